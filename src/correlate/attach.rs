//! Stream-to-call attachment: SDP endpoint match, NAT latching, host heuristics.

use crate::sdp::Sdp;
use crate::sip::state::SipCall;
use crate::types::{Endpoint, Ts, is_unroutable};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;

/// How a stream was attached to its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Association {
    /// Source or destination equals an address/port announced in the call's SDP.
    Sdp,
    /// The SDP announced an unroutable or other address; the media flows from/to the
    /// address the signalling was observed from (NAT, latching).
    Nat,
    /// Only the hosts and timing match the call's signalling.
    Heuristic,
}

/// The minimum a stream must tell the correlator.
#[derive(Debug, Clone, Copy)]
pub struct StreamKey {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub first_ts: Ts,
    pub last_ts: Ts,
}

impl StreamKey {
    pub fn of(s: &super::Stream) -> StreamKey {
        StreamKey {
            src: s.src,
            dst: s.dst,
            first_ts: s.first_ts,
            last_ts: s.last_ts,
        }
    }
}

/// One media endpoint announced in SDP: by which call, when.
#[derive(Debug, Clone)]
struct Announced {
    call: usize,
    ts: Ts,
}

/// Every audio/video/image endpoint announced in `sdp`.
pub fn sdp_endpoints(sdp: &Sdp) -> Vec<Endpoint> {
    sdp.media
        .iter()
        .filter(|m| m.port != 0)
        .filter_map(|m| sdp.media_addr(m).map(|ip| Endpoint::new(ip, m.port)))
        .collect()
}

/// What the correlator needs of a call, and all it reads: a few dozen bytes, so that it
/// can outlive the call's messages (a call can be released once finalised while streams
/// that may belong to it are still being decided).
#[derive(Debug, Clone, PartialEq)]
pub struct CallKey {
    pub start: Ts,
    pub end: Ts,
    /// The observed signalling addresses of each side: (caller side, callee side).
    pub hosts: (Vec<IpAddr>, Vec<IpAddr>),
    /// Every endpoint announced in the call's SDP, offers and answers in exchange order:
    /// (endpoint, when, sent by the caller).
    pub announced: Vec<(Endpoint, Ts, bool)>,
}

impl CallKey {
    pub fn of(call: &SipCall) -> CallKey {
        let mut announced = Vec::new();
        for ex in &call.sdp {
            for r in std::iter::once(&ex.offer).chain(ex.answer.iter()) {
                for ep in sdp_endpoints(&r.sdp) {
                    announced.push((ep, r.ts, r.from_caller));
                }
            }
        }
        CallKey {
            start: call.start,
            end: call.end,
            hosts: signalling_hosts(call, None),
            announced,
        }
    }

    /// The key as it stood at capture time `t`, from the call's messages and SDP up to
    /// then: what an engine deciding a stream at `t` knows of the call. `None` when the
    /// call began later.
    pub fn as_of(call: &SipCall, t: Ts) -> Option<CallKey> {
        if call.start > t {
            return None;
        }
        let mut announced = Vec::new();
        for ex in &call.sdp {
            for r in std::iter::once(&ex.offer).chain(ex.answer.iter()) {
                if r.ts <= t {
                    for ep in sdp_endpoints(&r.sdp) {
                        announced.push((ep, r.ts, r.from_caller));
                    }
                }
            }
        }
        let end = call
            .messages
            .iter()
            .filter(|m| m.ts <= t)
            .map(|m| m.ts)
            .max()
            .unwrap_or(call.start)
            .max(call.start);
        Some(CallKey {
            start: call.start,
            end,
            hosts: signalling_hosts(call, Some(t)),
            announced,
        })
    }
}

/// The observed signalling addresses of each side of a call: (caller side, callee side).
/// Only the messages up to `until`, when given.
fn signalling_hosts(call: &SipCall, until: Option<Ts>) -> (Vec<IpAddr>, Vec<IpAddr>) {
    let mut a = vec![call.caller.ip];
    let mut b = vec![call.callee.ip];
    for m in call
        .messages
        .iter()
        .filter(|m| until.is_none_or(|t| m.ts <= t))
    {
        // Requests from the caller side and responses to it keep the roles of the first INVITE.
        if m.src.ip == call.caller.ip || m.dst.ip == call.callee.ip {
            continue;
        }
        if m.dst.ip == call.caller.ip && !b.contains(&m.src.ip) {
            b.push(m.src.ip);
        }
        if m.src.ip == call.callee.ip && !a.contains(&m.dst.ip) {
            a.push(m.dst.ip);
        }
    }
    (a, b)
}

/// Calls a stream meets by host and time that are weighed for NAT/heuristic attachment.
const MAX_CANDIDATES: usize = 64;

/// Push the calls of `list` (sorted by start) nearest in start time to `t`: at least
/// [`MAX_CANDIDATES`] (all when fewer), plus any tied in distance with the farthest taken.
fn nearest(
    list: &[usize],
    dist: &impl Fn(usize) -> (u64, usize),
    t: Ts,
    calls: &[CallKey],
    out: &mut Vec<usize>,
) {
    if list.len() <= MAX_CANDIDATES {
        out.extend_from_slice(list);
        return;
    }
    let at = list.partition_point(|ci| calls[*ci].start < t);
    let (mut lo, mut hi) = (at, at); // taken: list[lo..hi]
    while hi - lo < MAX_CANDIDATES {
        let left = lo.checked_sub(1).map(|i| dist(list[i]).0);
        let right = list.get(hi).map(|ci| dist(*ci).0);
        match (left, right) {
            (Some(l), Some(r)) if l <= r => lo -= 1,
            (Some(_), None) => lo -= 1,
            (_, Some(_)) => hi += 1,
            (None, None) => break,
        }
    }
    // Ties with the farthest distance taken: the final cut orders by (distance, index).
    let edge = list[lo..hi].iter().map(|ci| dist(*ci).0).max().unwrap_or(0);
    while lo > 0 && dist(list[lo - 1]).0 == edge {
        lo -= 1;
    }
    while hi < list.len() && dist(list[hi]).0 == edge {
        hi += 1;
    }
    out.extend_from_slice(&list[lo..hi]);
}

/// The calls' SDP announcements and signalling hosts, indexed for deciding streams one at
/// a time ([`attach`] decides them all at once; a streaming engine decides each when the
/// capture clock has passed it).
pub struct CallIndex<'a> {
    calls: &'a [CallKey],
    by_ep: HashMap<Endpoint, Vec<Announced>>,
    by_host: HashMap<(IpAddr, i64), Vec<usize>>,
}

/// Buckets of the host index: a minute each, a day at most per call.
const BUCKET_NS: i64 = 60 * Ts::NS_PER_SEC;
const MAX_BUCKETS: i64 = 24 * 60;
fn bucket(t: Ts) -> i64 {
    t.0.div_euclid(BUCKET_NS)
}
/// Grace after the call's last message: RTCP and the last RTP packets trail the BYE.
pub const GRACE_NS: i64 = 5 * Ts::NS_PER_SEC;

/// How long after a unit's last packet (a call's last message, its streams' last
/// packets) a streaming engine judges it: 64·T1, the longest an RFC 3261 transaction
/// retransmits. The call-local rules were proved against it (`rules::CALL_SETTLE_S`).
pub const SETTLE_NS: i64 = 32 * Ts::NS_PER_SEC;

impl<'a> CallIndex<'a> {
    pub fn new(calls: &'a [CallKey]) -> CallIndex<'a> {
        let mut by_ep: HashMap<Endpoint, Vec<Announced>> = HashMap::new();
        for (ci, call) in calls.iter().enumerate() {
            for (ep, ts, _) in &call.announced {
                by_ep
                    .entry(*ep)
                    .or_default()
                    .push(Announced { call: ci, ts: *ts });
            }
        }
        // Index calls by signalling host and minute, so the NAT/heuristic pass looks only at
        // calls that share a host with the stream and overlap it in time (scans and floods of
        // unannounced streams must not cost streams × calls).
        let mut by_host: HashMap<(IpAddr, i64), Vec<usize>> = HashMap::new();
        for (ci, c) in calls.iter().enumerate() {
            let (from, to) = (
                bucket(c.start),
                bucket(Ts(c.end.0.saturating_add(GRACE_NS))),
            );
            let to = to.min(from.saturating_add(MAX_BUCKETS));
            let (ha, hb) = &c.hosts;
            for ip in ha.iter().chain(hb.iter()) {
                for b in from..=to {
                    let v = by_host.entry((*ip, b)).or_default();
                    if v.last() != Some(&ci) {
                        v.push(ci);
                    }
                }
            }
        }
        // Each bucket's calls by start time, for the nearest-in-time selection below.
        for v in by_host.values_mut() {
            v.sort_by_key(|ci| (calls[*ci].start, *ci));
        }
        CallIndex {
            calls,
            by_ep,
            by_host,
        }
    }

    /// Was the call up while the stream flowed (with the grace after its last message)?
    fn active(&self, ci: usize, s: &StreamKey) -> bool {
        self.calls.get(ci).is_some_and(|c| {
            s.first_ts.0 <= c.end.0.saturating_add(GRACE_NS) && s.last_ts.0 >= c.start.0
        })
    }

    /// The call a stream belongs to, and why (see [`attach`]).
    pub fn decide(&self, s: &StreamKey) -> Option<(usize, Association)> {
        let (calls, by_ep, by_host) = (self.calls, &self.by_ep, &self.by_host);
        let active = |ci: usize, s: &StreamKey| self.active(ci, s);
        // (1) SDP: the most recent announcement before the stream started (else the first).
        let mut best: Option<&Announced> = None;
        for ep in [s.dst, s.src] {
            if let Some(list) = by_ep.get(&ep) {
                for a in list {
                    if !active(a.call, s) {
                        continue;
                    }
                    let better = match best {
                        None => true,
                        Some(b) => {
                            let a_before = a.ts <= s.first_ts;
                            let b_before = b.ts <= s.first_ts;
                            (a_before && !b_before) || (a_before == b_before && a.ts > b.ts)
                        }
                    };
                    if better {
                        best = Some(a);
                    }
                }
            }
            if best.is_some() {
                break;
            }
        }
        if let Some(a) = best {
            return Some((a.call, Association::Sdp));
        }
        // (2) NAT / (3) heuristic, over calls active at the time.
        let mut heuristic = None;
        let (from, to) = (bucket(s.first_ts), bucket(s.last_ts));
        let to = to.min(from.saturating_add(MAX_BUCKETS));
        // Between one busy pair of hosts (a flood, or an SBC and a PBX) keep the calls
        // closest in time to the stream: a bounded cost per stream, and a media flow is
        // always near the signalling that set it up. Each bucket contributes its
        // nearest calls (a window around the stream's start in the start-sorted list,
        // ties at the edge included), so the cost per stream does not grow with the
        // calls in a bucket; the overall nearest MAX_CANDIDATES are among them.
        let dist = |ci: usize| (calls[ci].start.0.abs_diff(s.first_ts.0), ci);
        let mut candidates: Vec<usize> = Vec::new();
        for b in from..=to {
            for ip in [s.src.ip, s.dst.ip] {
                if let Some(v) = by_host.get(&(ip, b)) {
                    // A call that began after the stream ended cannot be its call and must
                    // not push one that can out of the nearest few: the stream is decided
                    // by the calls that had begun by its end, all a streaming engine
                    // knows when it decides it.
                    let v = &v[..v.partition_point(|ci| calls[*ci].start <= s.last_ts)];
                    nearest(v, &dist, s.first_ts, calls, &mut candidates);
                }
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        if candidates.len() > MAX_CANDIDATES {
            candidates.sort_by_key(|ci| dist(*ci));
            candidates.truncate(MAX_CANDIDATES);
            candidates.sort_unstable();
        }
        for ci in candidates {
            let call = &calls[ci];
            if !active(ci, s) {
                continue;
            }
            let (ha, hb) = &call.hosts;
            let src_a = ha.contains(&s.src.ip);
            let src_b = hb.contains(&s.src.ip);
            let dst_a = ha.contains(&s.dst.ip);
            let dst_b = hb.contains(&s.dst.ip);
            let announced_unroutable = call.announced.iter().any(|(e, _, _)| is_unroutable(&e.ip));
            let announced_other = |from_caller: bool, ep: &Endpoint| {
                call.announced
                    .iter()
                    .any(|(e, _, fc)| *fc == from_caller && e == ep)
            };
            // Media from a NATed side to what the other side announced, or back.
            if (src_a && announced_other(false, &s.dst))
                || (src_b && announced_other(true, &s.dst))
                || (dst_a && announced_other(false, &s.src))
                || (dst_b && announced_other(true, &s.src))
            {
                return Some((ci, Association::Nat));
            }
            if ((src_a && dst_b) || (src_b && dst_a)) && heuristic.is_none() {
                heuristic = Some((
                    ci,
                    if announced_unroutable {
                        Association::Nat
                    } else {
                        Association::Heuristic
                    },
                ));
            }
        }
        heuristic
    }
}

/// Attach each stream to at most one call. Returns, per stream, `(call index, how)`.
///
/// Rules, in order: (1) exact SDP endpoint match on the stream's destination or source,
/// preferring the call whose SDP was announced most recently before the stream started;
/// (2) NAT: the stream flows between a host that signalled the call and an announced
/// endpoint of the other side, or from a signalling host whose own SDP announced an
/// unroutable address, while the call was up; (3) heuristic: both hosts signalled the
/// call and the stream overlaps it in time.
pub fn attach(calls: &[CallKey], streams: &[StreamKey]) -> Vec<Option<(usize, Association)>> {
    let ix = CallIndex::new(calls);
    streams.iter().map(|s| ix.decide(s)).collect()
}
