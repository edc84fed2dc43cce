//! Streaming finalisation: calls and their streams leave the engine as the capture clock
//! passes them, one *unit* at a time (a call with its streams, or a stream no call
//! claimed), handed to a sink as a one-call [`Analysis`]; the engine keeps only what is
//! still open. This is what makes peak memory follow the calls in progress instead of
//! the length of the capture.
//!
//! When (all on the capture clock, checked every [`TICK_NS`]):
//! - the SIP state finalises a call 64·T1 after its dialog ended (`SipState::expire`);
//! - such a call is *ready* once [`SETTLE_NS`] have passed since its last message and no
//!   stream that could still join it is active: a stream overlapping the call (first
//!   packet no later than 5 s after its last message) that shares an address with the
//!   call's signalling hosts or SDP, and had a packet within the settling time;
//! - each stream quiet for the settling time is then decided, with the correlator
//!   (`CallIndex::decide`), over the calls as they stand: the finalised ones and the
//!   live ones. A stream decided for a ready call leaves with it; one no call claims
//!   leaves alone; one decided for a call that is not ready stays in the media table
//!   (it may still resume) and is decided again later.
//!
//! At the end of input everything left is final and leaves the same way.
//! `tests/streaming.rs` checks that the report equals the one built from the whole model.

use crate::correlate::{Analysis, CallIndex, CallKey, Stream, StreamKey};
use crate::sip::state::{OutOfDialog, Registration, SipCall, SipState};
use crate::types::Ts;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use super::media::Media;

use crate::correlate::GRACE_NS;
pub use crate::correlate::SETTLE_NS;
/// How often the finaliser looks (capture time).
pub const TICK_NS: i64 = 10 * Ts::NS_PER_SEC;

/// Where a unit goes: the caller's sink.
pub type Sink<'a> = dyn FnMut(Analysis) + 'a;

struct Pending {
    call: SipCall,
    key: CallKey,
}

/// The finaliser: finalised calls waiting for their streams, and the sink.
pub(crate) struct Finaliser<'a> {
    sink: &'a mut Sink<'a>,
    pending: Vec<Pending>,
    /// Keys of live calls, by Call-ID, with the (messages, SDP exchanges, end) they were
    /// made from: rebuilt only when the call has changed.
    live_keys: HashMap<String, ((usize, usize, Ts), CallKey)>,
    pub ood: Vec<OutOfDialog>,
    pub regs: Vec<Registration>,
    next_tick: Option<Ts>,
    /// Units handed to the sink.
    pub released: u64,
}

fn ips(k: &CallKey) -> impl Iterator<Item = IpAddr> + '_ {
    k.hosts
        .0
        .iter()
        .chain(k.hosts.1.iter())
        .copied()
        .chain(k.announced.iter().map(|(e, _, _)| e.ip))
}

impl<'a> Finaliser<'a> {
    pub fn new(sink: &'a mut Sink<'a>) -> Self {
        Finaliser {
            sink,
            pending: Vec::new(),
            live_keys: HashMap::new(),
            ood: Vec::new(),
            regs: Vec::new(),
            next_tick: None,
            released: 0,
        }
    }

    /// Look at the clock: release what is ready.
    pub fn tick(&mut self, now: Ts, first_ts: Option<Ts>, sip: &mut SipState, media: &mut Media) {
        match self.next_tick {
            Some(t) if now < t => return,
            _ => self.next_tick = Some(Ts(now.0.saturating_add(TICK_NS))),
        }
        let (calls, ood, regs) = sip.drain_finished();
        self.ood.extend(ood);
        self.regs.extend(regs);
        for call in calls {
            let key = CallKey::of(&call);
            self.pending.push(Pending { call, key });
        }
        let quiet = |s: &StreamKey| s.last_ts.0.saturating_add(SETTLE_NS) < now.0;
        let streams = media.keys();
        // An active stream could still join a settled call if it shares an address with
        // it and began no later than the call's grace (its last packet is recent, so it
        // overlaps the call): per address, the earliest start of an active stream
        // decides. One pass over the streams and one lookup per address of a call, so a
        // long stream that holds many calls back does not cost streams × calls per tick.
        let mut active_since: HashMap<IpAddr, i64> = HashMap::new();
        for (_, s) in streams.iter().filter(|(_, s)| !quiet(s)) {
            for ip in [s.src.ip, s.dst.ip] {
                let e = active_since.entry(ip).or_insert(s.first_ts.0);
                *e = (*e).min(s.first_ts.0);
            }
        }
        let ready: Vec<bool> = self
            .pending
            .iter()
            .map(|p| {
                let settled = p.call.end.0.saturating_add(SETTLE_NS) < now.0;
                let grace = p.key.end.0.saturating_add(GRACE_NS);
                settled && !ips(&p.key).any(|ip| active_since.get(&ip).is_some_and(|f| *f <= grace))
            })
            .collect();
        let quiet_streams: Vec<&(u64, StreamKey)> =
            streams.iter().filter(|(_, s)| quiet(s)).collect();
        if !ready.contains(&true) && quiet_streams.is_empty() {
            return;
        }
        // The calls as they stand: finalised first, then live ones.
        let mut keys: Vec<CallKey> = self.pending.iter().map(|p| p.key.clone()).collect();
        let mut seen = BTreeSet::new();
        for c in sip.live_call_views() {
            let version = (c.messages.len(), c.sdp.len(), c.end);
            seen.insert(c.call_id.clone());
            let k = match self.live_keys.get(&c.call_id) {
                Some((v, k)) if *v == version => k.clone(),
                _ => {
                    let k = CallKey::of(c);
                    self.live_keys
                        .insert(c.call_id.clone(), (version, k.clone()));
                    k
                }
            };
            keys.push(k);
        }
        self.live_keys.retain(|id, _| seen.contains(id));
        let index = CallIndex::new(&keys);
        let mut take = BTreeSet::new();
        let mut by_call: HashMap<usize, Vec<u64>> = HashMap::new();
        let mut how = HashMap::new();
        for (order, s) in quiet_streams {
            match index.decide(s) {
                None => {
                    take.insert(*order);
                }
                Some((ci, h)) if ready.get(ci).copied().unwrap_or(false) => {
                    take.insert(*order);
                    how.insert(*order, h);
                    by_call.entry(ci).or_default().push(*order);
                }
                // A call not ready (or live): the stream stays, and may resume.
                Some(_) => {}
            }
        }
        drop(index);
        let mut by_order: HashMap<u64, Stream> = media
            .take(&take)
            .into_iter()
            .map(|mut s| {
                s.association = how.get(&s.order).copied();
                (s.order, s)
            })
            .collect();
        let pending = std::mem::take(&mut self.pending);
        for (ci, p) in pending.into_iter().enumerate() {
            if !ready.get(ci).copied().unwrap_or(false) {
                self.pending.push(p);
                continue;
            }
            let streams: Vec<Stream> = by_call
                .remove(&ci)
                .unwrap_or_default()
                .iter()
                .filter_map(|o| by_order.remove(o))
                .collect();
            for ex in &p.call.sdp {
                for r in std::iter::once(&ex.offer).chain(ex.answer.iter()) {
                    media.retract(&r.sdp, r.ts);
                }
            }
            self.emit(Analysis::unit(first_ts, None, Some(p.call), streams));
        }
        let mut orphans: Vec<Stream> = by_order.into_values().collect();
        orphans.sort_by_key(|s| s.order);
        for s in orphans {
            self.emit(Analysis::unit(first_ts, None, None, vec![s]));
        }
    }

    fn emit(&mut self, a: Analysis) {
        self.released += 1;
        (self.sink)(a);
    }

    /// End of input: `calls` (the SIP state's last, all final) and `streams` (every one
    /// left) leave as units, decided over every call not yet released.
    pub fn finish(
        &mut self,
        calls: Vec<SipCall>,
        streams: Vec<Stream>,
        first_ts: Option<Ts>,
        last_ts: Option<Ts>,
    ) {
        for call in calls {
            let key = CallKey::of(&call);
            self.pending.push(Pending { call, key });
        }
        let mut pending = std::mem::take(&mut self.pending);
        // Report order, so the sink sees the same sequence whatever the timing.
        pending.sort_by(|a, b| {
            (a.call.first_frame, &a.call.call_id).cmp(&(b.call.first_frame, &b.call.call_id))
        });
        let keys: Vec<CallKey> = pending.iter().map(|p| p.key.clone()).collect();
        let index = CallIndex::new(&keys);
        let mut by_call: Vec<Vec<Stream>> = (0..pending.len()).map(|_| Vec::new()).collect();
        let mut orphans = Vec::new();
        for mut s in streams {
            match index.decide(&StreamKey::of(&s)) {
                Some((ci, how)) if ci < by_call.len() => {
                    s.association = Some(how);
                    if let Some(v) = by_call.get_mut(ci) {
                        v.push(s);
                    }
                }
                _ => orphans.push(s),
            }
        }
        drop(index);
        for (p, streams) in pending.into_iter().zip(by_call) {
            self.emit(Analysis::unit(first_ts, last_ts, Some(p.call), streams));
        }
        for s in orphans {
            self.emit(Analysis::unit(first_ts, last_ts, None, vec![s]));
        }
    }
}
