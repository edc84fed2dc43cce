//! Requests by source address, counted as the capture goes: what the security rules
//! (`security.scanner`, `security.flood`, `security.toll-fraud`) judge.
//!
//! Every new request the SIP state keeps (a call's request that is not a retransmission,
//! a new out-of-dialog transaction, a new REGISTER) passes [`SourceTable::request`] in
//! capture order. A source costs a fixed summary (about 260 bytes): its request count,
//! how many of them rang or succeeded (tapped from the responses, each transaction once),
//! its first request and first scanner-tool request, the distinct user parts it addressed
//! (hashes, at most [`USERS_CAP`]), and the best windows found so far: the busiest second
//! (any request) and the most distinct INVITE destinations within a minute. The windows
//! themselves ([`Hot`]) hold only the requests of the last second and INVITEs of the last
//! minute (at most [`MAX_WINDOW`] each), and are dropped once the source is quiet for
//! longer ([`SourceTable::expire`]): the table grows with the sources, never with their
//! requests or the capture's length.
//!
//! Windows slide over capture order. A timestamp that goes back counts at the source's
//! latest time (a sorted list would place it earlier); the evidence quotes its own time.
//! Our own code because the windows, the evidence they quote and the bound on memory are
//! the rule's definition; no crate has that shape.

use crate::sip::wire::{HeaderName, Method, SipMessage, uri_user};
use crate::types::{FrameRef, Ts};
use foldhash::quality::RandomState;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
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

/// Whether a User-Agent names a known SIP scanning tool.
pub fn is_scanner_ua(ua: &str) -> bool {
    let ua = ua.to_ascii_lowercase();
    SCANNERS.iter().any(|s| ua.contains(s))
}

/// At most this many distinct user parts are counted per source.
pub const USERS_CAP: usize = 10_000;
/// At most this many sources are tracked; later ones are counted as not kept.
pub const MAX_SOURCES: usize = 1_000_000;
/// The flood window: requests within one second (a request exactly 1 s after another
/// starts a new second).
const SECOND_NS: i64 = Ts::NS_PER_SEC;
/// The toll-fraud window: INVITEs up to 60 s apart.
const MINUTE_NS: i64 = 60 * Ts::NS_PER_SEC;
/// INVITEs a toll-fraud window quotes.
pub const TOLL_EVIDENCE: usize = 5;
/// At most this many requests in one source's open window: a flood at line rate keeps
/// the newest, and its count is then a lower bound (far above any threshold).
const MAX_WINDOW: usize = 65_536;
/// `SourceRequests::queued` of a source not in the expiry queue (no capture time is).
const NOT_QUEUED: Ts = Ts(i64::MIN);

/// A request as a finding quotes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    pub frame: FrameRef,
    pub ts: Ts,
    pub method: Method,
    pub user_agent: Option<Box<str>>,
}

/// The INVITEs a toll-fraud window quotes: frame, time, destination user part.
pub type Dest = (FrameRef, Ts, Option<Box<str>>);

/// The distinct user parts one source addressed, as 64-bit hashes (seeded per process):
/// a short list for the usual handful, a set beyond it.
#[derive(Debug, Clone, Default)]
pub struct Users {
    few: Vec<u64>,
    // Boxed on purpose: few sources need the set, and the summary of every other one
    // stays 40 bytes smaller.
    #[allow(clippy::box_collection)]
    many: Option<Box<HashSet<u64>>>,
}

const FEW_USERS: usize = 16;

impl Users {
    fn insert(&mut self, h: u64) {
        if let Some(s) = self.many.as_mut() {
            if s.len() < USERS_CAP {
                s.insert(h);
            }
            return;
        }
        if self.few.contains(&h) {
            return;
        }
        if self.few.len() < FEW_USERS.min(USERS_CAP) {
            self.few.push(h);
            return;
        }
        let mut s: HashSet<u64> = self.few.drain(..).collect();
        s.insert(h);
        self.few = Vec::new();
        self.many = Some(Box::new(s));
    }
    pub fn len(&self) -> usize {
        self.many.as_ref().map_or(self.few.len(), |s| s.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one source sent, summed up (see the module doc).
#[derive(Debug, Clone)]
pub struct SourceRequests {
    pub ip: IpAddr,
    /// Requests counted (retransmissions are not new requests).
    pub requests: u64,
    /// Of those, the ones that expect a response (all but ACK).
    pub answerable: u32,
    /// Requests that got a ringing or success response (101–299; each transaction once):
    /// a PBX's or trunk's calls mostly do, a scanner's probes are refused or unanswered.
    pub progressed: u32,
    /// The first request.
    pub first: Quote,
    /// The first request whose User-Agent names a scanner tool.
    pub tool: Option<Box<Quote>>,
    /// Distinct To user parts, at most [`USERS_CAP`].
    pub users: Users,
    /// The most requests within one second, and the first request of that second.
    pub busiest_second: (u32, FrameRef, Ts, Method),
    /// INVITEs whose destination is international (`+`, `00`, `011`).
    pub international: u64,
    /// The most distinct INVITE destinations within 60 s (0 before the first INVITE), and
    /// the first [`TOLL_EVIDENCE`] INVITEs from that window's start on.
    pub busiest_minute: (u32, Vec<Dest>),
    /// Whether `busiest_minute`'s quotes still take the next INVITEs (its window had
    /// fewer than [`TOLL_EVIDENCE`] when it became the best).
    filling: bool,
    /// The latest time of a request (windows slide on it).
    last: Ts,
    /// When this source last went into [`SourceTable`]'s expiry queue (at most once a
    /// second); [`NOT_QUEUED`] when it is not in it.
    queued: Ts,
    hot: Option<Box<Hot>>,
}

/// The open windows of a source: its requests of the last second, its INVITEs of the last
/// minute with a count per destination.
#[derive(Debug, Clone, Default)]
struct Hot {
    /// (sliding time, own time, frame, method).
    second: VecDeque<(Ts, Ts, FrameRef, Method)>,
    minute: VecDeque<(Ts, Dest)>,
    in_minute: HashMap<Box<str>, u32>,
    /// INVITEs in the minute without a user part (they count, but not as a destination).
    anonymous: usize,
}

/// Destinations that look international.
pub fn international(user: &str) -> bool {
    let u = user.trim_start_matches("tel:");
    u.starts_with('+') || u.starts_with("00") || u.starts_with("011")
}

/// The table of [`SourceRequests`], capped at [`MAX_SOURCES`].
#[derive(Debug, Default)]
pub struct SourceTable {
    by_src: HashMap<IpAddr, SourceRequests, foldhash::fast::RandomState>,
    hasher: RandomState,
    /// (time, source) of the sources active in the last minute, oldest first, at most
    /// one entry per source and second: which sources' windows may have closed.
    recent: VecDeque<(Ts, IpAddr)>,
    pub not_kept: u64,
}

impl SourceTable {
    /// A request from `src` got its transaction's first ringing or success response.
    pub fn progressed(&mut self, src: IpAddr) {
        if let Some(s) = self.by_src.get_mut(&src) {
            s.progressed = s.progressed.saturating_add(1);
        }
    }

    /// Count a new request from `src` (see the module doc for which).
    pub fn request(&mut self, src: IpAddr, frame: FrameRef, ts: Ts, m: &SipMessage) {
        let Some(method) = m.method() else {
            return;
        };
        let ua = m.header_value(HeaderName::UserAgent);
        let to = m.to_hdr();
        let user = to.as_ref().and_then(|t| uri_user(&t.uri));
        let user_hash = user.map(|u| self.hasher.hash_one(u));
        if !self.by_src.contains_key(&src) && self.by_src.len() >= MAX_SOURCES {
            self.not_kept += 1;
            return;
        }
        let s = self.by_src.entry(src).or_insert_with(|| SourceRequests {
            ip: src,
            requests: 0,
            answerable: 0,
            progressed: 0,
            first: Quote {
                frame,
                ts,
                method: method.clone(),
                user_agent: ua.as_deref().map(Into::into),
            },
            tool: None,
            users: Users::default(),
            busiest_second: (0, frame, ts, method.clone()),
            international: 0,
            busiest_minute: (0, Vec::new()),
            filling: false,
            last: ts,
            queued: NOT_QUEUED,
            hot: None,
        });
        s.requests += 1;
        if *method != Method::Ack {
            s.answerable = s.answerable.saturating_add(1);
        }
        if let Some(h) = user_hash {
            s.users.insert(h);
        }
        if s.tool.is_none()
            && let Some(ua) = ua.as_deref().filter(|u| is_scanner_ua(u))
        {
            s.tool = Some(Box::new(Quote {
                frame,
                ts,
                method: method.clone(),
                user_agent: Some(ua.into()),
            }));
        }
        // Windows slide on the source's latest time.
        let at = s.last.max(ts);
        s.last = at;
        if at.0.saturating_sub(s.queued.0) >= SECOND_NS {
            s.queued = at;
            self.recent.push_back((at, src));
        }
        let hot = s.hot.get_or_insert_with(Box::default);
        hot.second.push_back((at, ts, frame, method.clone()));
        while let Some((t, ..)) = hot.second.front()
            && (at.0.saturating_sub(t.0) >= SECOND_NS || hot.second.len() > MAX_WINDOW)
        {
            hot.second.pop_front();
        }
        let n = u32::try_from(hot.second.len()).unwrap_or(u32::MAX);
        if n > s.busiest_second.0
            && let Some((_, own, f, mm)) = hot.second.front()
        {
            s.busiest_second = (n, *f, *own, mm.clone());
        }
        if *method != Method::Invite {
            return;
        }
        if user.is_some_and(international) {
            s.international += 1;
        }
        let dest: Dest = (frame, ts, user.map(Into::into));
        if s.filling && s.busiest_minute.1.len() < TOLL_EVIDENCE {
            s.busiest_minute.1.push(dest.clone());
        }
        s.filling = s.filling && s.busiest_minute.1.len() < TOLL_EVIDENCE;
        match user {
            Some(u) => *hot.in_minute.entry(u.into()).or_default() += 1,
            None => hot.anonymous += 1,
        }
        hot.minute.push_back((at, dest));
        while let Some((t, (_, _, u))) = hot.minute.front()
            && (at.0.saturating_sub(t.0) > MINUTE_NS || hot.minute.len() > MAX_WINDOW)
        {
            match u {
                Some(u) => {
                    if let Some(c) = hot.in_minute.get_mut(u) {
                        *c -= 1;
                        if *c == 0 {
                            hot.in_minute.remove(u);
                        }
                    }
                }
                None => hot.anonymous = hot.anonymous.saturating_sub(1),
            }
            hot.minute.pop_front();
        }
        let distinct = u32::try_from(hot.in_minute.len()).unwrap_or(u32::MAX);
        if s.busiest_minute.1.is_empty() || distinct > s.busiest_minute.0 {
            let quotes: Vec<Dest> = hot
                .minute
                .iter()
                .take(TOLL_EVIDENCE)
                .map(|(_, d)| d.clone())
                .collect();
            s.filling = quotes.len() < TOLL_EVIDENCE;
            s.busiest_minute = (distinct, quotes);
        }
    }

    /// Close the windows of sources quiet for more than a minute at `now`. A source's
    /// newest queue entry is at most a second older than its last request (a later one
    /// would have queued it again), so two seconds past the minute it is quiet.
    pub fn expire(&mut self, now: Ts) {
        while let Some(&(t, ip)) = self.recent.front() {
            if now.0.saturating_sub(t.0) <= MINUTE_NS + 2 * SECOND_NS {
                break;
            }
            self.recent.pop_front();
            if let Some(s) = self.by_src.get_mut(&ip)
                && s.queued == t
            {
                s.hot = None;
                s.queued = NOT_QUEUED;
            }
        }
    }

    /// The sources by address.
    pub fn finish(self) -> Vec<SourceRequests> {
        let mut v: Vec<SourceRequests> = self
            .by_src
            .into_values()
            .map(|mut s| {
                s.hot = None;
                s
            })
            .collect();
        v.sort_by_key(|s| s.ip);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::wire::parse;

    const SRC: &str = "192.0.2.7";

    fn msg(method: &str, to_user: Option<&str>, ua: &str) -> SipMessage {
        let to = to_user.map_or("sip:example.com".to_string(), |u| {
            format!("sip:{u}@example.com")
        });
        let raw = format!(
            "{method} {to} SIP/2.0\r\nVia: SIP/2.0/UDP {SRC}:5060;branch=z9hG4bK1\r\n\
             From: <sip:a@example.com>;tag=1\r\nTo: <{to}>\r\nCall-ID: x\r\n\
             CSeq: 1 {method}\r\nUser-Agent: {ua}\r\nContent-Length: 0\r\n\r\n"
        );
        parse(raw.as_bytes()).expect("test message parses")
    }

    struct T {
        t: SourceTable,
        frame: u64,
    }

    impl T {
        fn new() -> T {
            T {
                t: SourceTable::default(),
                frame: 0,
            }
        }
        /// A request at `ms` milliseconds; returns its frame.
        fn req(&mut self, ms: i64, method: &str, to: Option<&str>, ua: &str) -> FrameRef {
            self.frame += 1;
            let f = FrameRef::new(0, self.frame);
            let m = msg(method, to, ua);
            self.t
                .request(SRC.parse().unwrap(), f, Ts(ms * 1_000_000), &m);
            f
        }
        fn one(self) -> SourceRequests {
            let mut v = self.t.finish();
            assert_eq!(v.len(), 1);
            v.remove(0)
        }
    }

    #[test]
    fn busiest_second_is_a_sliding_window() {
        let mut t = T::new();
        // 10 requests in the first second, then 30 within 999 ms straddling 5 s.
        for i in 0..10 {
            t.req(i * 100, "OPTIONS", None, "x");
        }
        let mut first = None;
        for i in 0..30 {
            let f = t.req(4_500 + i * 33, "OPTIONS", None, "x");
            first.get_or_insert(f);
        }
        // Exactly one second after the previous one: a new second.
        t.req(4_500 + 29 * 33 + 1_000, "REGISTER", None, "x");
        let s = t.one();
        assert_eq!(s.requests, 41);
        assert_eq!(s.busiest_second.0, 30);
        assert_eq!(Some(s.busiest_second.1), first);
        assert_eq!(s.busiest_second.2, Ts(4_500 * 1_000_000));
        assert_eq!(s.busiest_second.3, Method::Options);
    }

    #[test]
    fn busiest_minute_counts_distinct_destinations_and_quotes_from_its_start() {
        let mut t = T::new();
        // Two calls to the same number, 61 s apart windows.
        t.req(0, "INVITE", Some("100"), "x");
        t.req(1_000, "INVITE", Some("100"), "x");
        // Later: 3 distinct destinations within 60 s (one international), one without a
        // user part, and an ACK (not an INVITE).
        let w0 = t.req(100_000, "INVITE", Some("+4420"), "x");
        t.req(110_000, "ACK", Some("+4420"), "x");
        t.req(120_000, "INVITE", Some("200"), "x");
        t.req(130_000, "INVITE", None, "x");
        t.req(160_000, "INVITE", Some("300"), "x");
        // 60 s after the window's start still belongs to it; this one is after (> 60 s).
        let late = t.req(160_001, "INVITE", Some("0049"), "x");
        let s = t.one();
        assert_eq!(s.busiest_minute.0, 3);
        let frames: Vec<FrameRef> = s.busiest_minute.1.iter().map(|d| d.0).collect();
        // The best window begins at w0; quotes are its first five INVITEs from there on,
        // running past the window's end.
        assert_eq!(frames.first(), Some(&w0));
        assert_eq!(frames.len(), TOLL_EVIDENCE);
        assert_eq!(frames.last(), Some(&late));
        assert_eq!(s.busiest_minute.1[2].2, None);
        assert_eq!(s.international, 2);
    }

    #[test]
    fn distinct_users_and_the_first_scanner_request() {
        let mut t = T::new();
        t.req(0, "REGISTER", Some("1000"), "Linphone");
        for i in 0..40 {
            t.req(10 + i, "REGISTER", Some(&format!("{}", 1000 + i % 25)), "x");
        }
        let tool = t.req(100, "OPTIONS", Some("1"), "friendly-scanner");
        t.req(101, "OPTIONS", Some("2"), "sipvicious");
        let s = t.one();
        // 25 from the loop (1000 included) + "1" + "2", across the switch to a set.
        assert_eq!(s.users.len(), 27);
        assert_eq!(s.first.method, Method::Register);
        assert_eq!(s.first.user_agent.as_deref(), Some("Linphone"));
        let tq = s.tool.expect("a scanner request");
        assert_eq!(tq.frame, tool);
        assert_eq!(tq.user_agent.as_deref(), Some("friendly-scanner"));
        assert_eq!(s.requests, 43);
    }

    #[test]
    fn quiet_sources_lose_their_windows_not_their_summary() {
        let mut t = T::new();
        for i in 0..5 {
            t.req(i, "INVITE", Some(&format!("{i}")), "x");
        }
        t.t.expire(Ts(30_000 * 1_000_000));
        assert!(t.t.by_src.values().all(|s| s.hot.is_some()), "still open");
        assert_eq!(
            t.t.recent.len(),
            1,
            "one queue entry for a second of requests"
        );
        t.t.expire(Ts(63_000 * 1_000_000));
        assert!(t.t.by_src.values().all(|s| s.hot.is_none()), "closed");
        assert!(t.t.recent.is_empty());
        // A new burst starts from fresh windows; the summary kept the old best.
        t.req(200_000, "INVITE", Some("9"), "x");
        let s = t.one();
        assert_eq!(s.busiest_minute.0, 5);
        assert_eq!(s.busiest_second.0, 5);
        assert_eq!(s.requests, 6);
    }

    #[test]
    fn a_flood_keeps_a_bounded_window() {
        let mut t = T::new();
        let n = MAX_WINDOW + 100;
        for i in 0..n {
            // All within 100 ms.
            t.req(i as i64 / 1000, "OPTIONS", None, "x");
        }
        let hot =
            t.t.by_src
                .values()
                .next()
                .and_then(|s| s.hot.as_ref())
                .map(|h| h.second.len());
        assert_eq!(hot, Some(MAX_WINDOW));
        let s = t.one();
        assert_eq!(s.requests, n as u64);
        assert_eq!(
            s.busiest_second.0 as usize, MAX_WINDOW,
            "a lower bound once capped"
        );
    }

    #[test]
    fn a_clock_going_back_counts_at_the_latest_time() {
        let mut t = T::new();
        t.req(5_000, "OPTIONS", None, "x");
        // 4 s earlier by its timestamp: a sorted list would put it first, outside the
        // next request's second; in capture order it slides with the latest time.
        let back = t.req(1_000, "OPTIONS", None, "x");
        t.req(5_500, "OPTIONS", None, "x");
        let s = t.one();
        assert_eq!(s.busiest_second.0, 3);
        assert_eq!(s.first.ts, Ts(5_000 * 1_000_000));
        assert_ne!(s.busiest_second.1, back);
    }

    #[test]
    fn a_source_costs_a_fixed_summary() {
        let n = std::mem::size_of::<SourceRequests>();
        eprintln!("SourceRequests {n} B per source (+ hash table slot, first User-Agent)");
        assert!(n <= 264, "SourceRequests grew to {n} bytes");
    }
}
