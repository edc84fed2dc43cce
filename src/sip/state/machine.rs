//! The dispatcher: per-Call-ID entries (Wireshark resend state, the call, out-of-dialog
//! requests, pending REGISTER transactions), the registration table, the caps with
//! least-recently-active eviction, and idle expiry on the capture clock.
//!
//! Every table is a seeded-hash map plus a recency index (`BTreeMap<touch, key>`), so a
//! message costs O(log n) whatever the number of Call-IDs, and eviction/expiry pop the
//! oldest entries from the front of the index.

use super::call::{CallB, MsgFacts, is_rfc3261_branch};
use super::reg::{RegB, RegKey, register_bindings};
use super::sources::SourceTable;
use super::wsstat::{ResendEntry, StatAcc, WsMsg, resend_check};
use super::{OutOfDialog, Registration, SipCall, SipLimits, SipOutput, SipPacket};
use crate::sip::wire::{HeaderName, Method, SipMessage};
use crate::types::{Anomaly, Layer, Transport, Ts};
use foldhash::fast::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Directions remembered per Call-ID for the resend logic (a real dialog has a handful).
const MAX_RESEND_DIRECTIONS: usize = 64;
/// Out-of-dialog requests kept per Call-ID (SUBSCRIBE/NOTIFY dialogs reuse one Call-ID).
const MAX_OOD_PER_CALL_ID: usize = 1_000;
/// Pending REGISTER transactions remembered per Call-ID.
const MAX_REG_TX_PER_CALL_ID: usize = 64;

struct RegTx {
    cseq: u32,
    branch: Option<String>,
    keys: Vec<RegKey>,
}

#[derive(Default)]
struct Entry {
    touch: u64,
    last_ts: Ts,
    resend: Vec<ResendEntry>,
    call: Option<Box<CallB>>,
    ood: Vec<OutOfDialog>,
    reg_tx: Vec<RegTx>,
    /// The entry's key in `SipState::ended` while its call's dialog has ended.
    ended_key: Option<(Ts, u64)>,
}

/// Owns calls, registrations and out-of-dialog transactions for one shard.
pub struct SipState {
    limits: SipLimits,
    stats: StatAcc,
    entries: HashMap<String, Entry, RandomState>,
    /// Recency indexes: entries holding a call, and the others.
    lru_calls: BTreeMap<u64, String>,
    lru_other: BTreeMap<u64, String>,
    /// Calls whose dialog has ended, by (when to finalise them, recency): their last
    /// message plus `ended_call_linger_ms` (or `challenged_call_linger_ms`).
    ended: BTreeMap<(Ts, u64), String>,
    regs: HashMap<RegKey, (u64, RegB), RandomState>,
    lru_regs: BTreeMap<u64, RegKey>,
    touch: u64,
    calls_done: Vec<SipCall>,
    ood_done: Vec<OutOfDialog>,
    regs_done: Vec<Registration>,
    anomalies: Vec<Anomaly>,
    /// Requests by source, for the security rules.
    sources: SourceTable,
    evicted_calls: u64,
    /// Finished calls / out-of-dialog requests beyond the kept caps (counted only).
    calls_not_kept: u64,
    /// Kept calls that never got a response.
    unanswered_kept: usize,
    ood_not_kept: u64,
    regs_not_kept: u64,
    /// Calls held here for the report, until drained: a streaming run spills
    /// each drained call's row to disk, so a day of gateway traffic keeps every call;
    /// a run that keeps its report in memory never drains, and the cap bounds it.
    kept_calls: usize,
    /// Calls finalised so far, kept or not (progress display).
    calls_finalised: u64,
    /// Out-of-dialog requests and registrations kept so far, drained or not: drained
    /// ones stay in memory for the report (the finaliser's lists), so the caps count
    /// what the report holds, not what is still here. Unanswered calls, too, count over
    /// the whole capture (`unanswered_kept`): they are a scan's signature, and each
    /// costs a report row even when spilled.
    kept_ood: usize,
    kept_regs: usize,
    evicted_ood: u64,
    evicted_regs: u64,
}

/// The report's order of registrations (by first attempt, AOR, contact) and out-of-dialog
/// requests (by frame); also for lists merged from several drains.
pub fn report_order(regs: &mut [Registration], ood: &mut [OutOfDialog]) {
    regs.sort_by(|a, b| {
        let fa = a.attempts.first().map(|x| x.frame);
        let fb = b.attempts.first().map(|x| x.frame);
        fa.cmp(&fb)
            .then_with(|| a.aor.cmp(&b.aor))
            .then_with(|| a.contact.cmp(&b.contact))
    });
    ood.sort_by_key(|o| o.frame);
}

/// The message's SDP ([`SipMessage::sdp_body`]: the body, or a multipart's SDP part),
/// parsed; what [`SipPacket::sdp`] carries.
pub fn message_sdp(m: &SipMessage) -> Option<Arc<crate::sdp::Sdp>> {
    m.sdp_body().map(|b| Arc::new(crate::sdp::parse(b)))
}

/// Does Wireshark's SIP dissector reach its tap for this message? A header section cut off
/// in the middle of a line (no blank line, no final line end: a truncated snaplen or a
/// datagram cut short) makes it throw a malformed-packet exception first, so the message
/// is neither counted in `sip,stat` nor entered in the resend table. (Observed on
/// PcapPlusPlus `sip_reqs.pcap`, frame 4: 4 SIP frames, `sip,stat` counts 3.)
fn wireshark_taps(m: &SipMessage) -> bool {
    let cut = m.anomalies.iter().any(|a| a.kind == "sip.no_header_end") && !m.raw.ends_with(b"\n");
    !cut
}

impl SipState {
    pub fn new(limits: SipLimits) -> Self {
        SipState {
            limits,
            stats: StatAcc::default(),
            entries: HashMap::with_hasher(RandomState::default()),
            lru_calls: BTreeMap::new(),
            ended: BTreeMap::new(),
            lru_other: BTreeMap::new(),
            regs: HashMap::with_hasher(RandomState::default()),
            lru_regs: BTreeMap::new(),
            touch: 0,
            calls_done: Vec::new(),
            ood_done: Vec::new(),
            regs_done: Vec::new(),
            anomalies: Vec::new(),
            sources: SourceTable::default(),
            evicted_calls: 0,
            calls_not_kept: 0,
            unanswered_kept: 0,
            ood_not_kept: 0,
            regs_not_kept: 0,
            kept_calls: 0,
            calls_finalised: 0,
            kept_ood: 0,
            kept_regs: 0,
            evicted_ood: 0,
            evicted_regs: 0,
        }
    }

    /// Account one SIP message.
    pub fn on_message(&mut self, p: &SipPacket<'_>) {
        let m: &SipMessage = p.msg;
        let call_id = m.call_id().map(|c| c.trim().to_string());
        let cseq = m.cseq();
        let code = m.status();
        let req_method = m.method();

        // Wireshark: the resend table uses "" when there is no Call-ID.
        let key = call_id.clone().unwrap_or_default();
        let cseq_method = cseq.as_ref().map(|c| c.method.as_str().to_string());
        let ws = WsMsg {
            src: p.tuple.src,
            dst: p.tuple.dst,
            udp: p.tuple.transport == Transport::Udp,
            ts: p.ts,
            cseq: cseq
                .as_ref()
                .zip(cseq_method.as_deref())
                .map(|(c, mm)| (c.seq, mm)),
            response_code: code,
        };
        self.touch_entry(&key, p.ts);
        let tapped = wireshark_taps(m);
        let (resend, setup) = match self.entries.get_mut(&key) {
            Some(e) if tapped => {
                let r = resend_check(&mut e.resend, &ws);
                if e.resend.len() > MAX_RESEND_DIRECTIONS {
                    e.resend.remove(0);
                }
                r
            }
            _ => (false, 0),
        };
        if tapped {
            self.stats
                .count(req_method.map(|x| x.as_str()), code, resend, setup);
        }

        let (Some(call_id), Some(cseq)) = (call_id, cseq) else {
            let missing = match (m.call_id().is_none(), m.cseq().is_none()) {
                (true, true) => "Call-ID and CSeq",
                (true, false) => "Call-ID",
                _ => "CSeq",
            };
            self.anomalies.push(Anomaly {
                layer: Layer::Sip,
                kind: "sip.missing_header",
                frame: p.frame,
                detail: format!(
                    "message without a usable {missing}: not tracked in calls or registrations"
                ),
            });
            // It still counts as activity of the Call-ID's entry.
            self.note_ended(&key);
            self.enforce_caps();
            return;
        };

        let top_via = m.top_via();
        let top = top_via.as_ref();
        let branch = top.and_then(|v| v.branch.clone());
        let from_tag = m.from_hdr().and_then(|f| f.tag);
        let to_tag = m.to_hdr().and_then(|t| t.tag);
        let tx_key = match &branch {
            Some(b) if is_rfc3261_branch(b) => b.clone(),
            _ => format!(
                "rfc2543|{}|{}|{}|{}",
                from_tag.as_deref().unwrap_or(""),
                cseq.seq,
                top.map(|v| v.host.as_str()).unwrap_or(""),
                top.and_then(|v| v.port).unwrap_or(0)
            ),
        };
        let facts = MsgFacts {
            call_id,
            cseq,
            from_tag,
            to_tag,
            tx_key,
            branch,
            sdp: p.sdp.cloned(),
            resend,
        };

        match (req_method, code) {
            (Some(method), _) => self.on_request(p, &key, &facts, method),
            (None, Some(code)) => self.on_response(p, &key, &facts, code),
            (None, None) => {}
        }
        self.note_ended(&key);
        self.enforce_caps();
    }

    /// Keep the entry's place in the ended-calls index current (its last message and
    /// recency move with every message).
    fn note_ended(&mut self, key: &str) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        let now = e.call.as_ref().and_then(|c| c.ended()).map(|challenged| {
            let linger = if challenged {
                self.limits.challenged_call_linger_ms
            } else {
                self.limits.ended_call_linger_ms
            };
            (e.last_ts.plus_ms(linger), e.touch)
        });
        if now == e.ended_key {
            return;
        }
        if let Some(old) = e.ended_key.take() {
            self.ended.remove(&old);
        }
        if let Some(k) = now {
            self.ended.insert(k, key.to_string());
            e.ended_key = Some(k);
        }
    }

    fn next_touch(&mut self) -> u64 {
        self.touch += 1;
        self.touch
    }

    /// Create or refresh the entry of a Call-ID in its recency index.
    fn touch_entry(&mut self, key: &str, ts: Ts) {
        let t = self.next_touch();
        match self.entries.get_mut(key) {
            Some(e) => {
                let lru = if e.call.is_some() {
                    &mut self.lru_calls
                } else {
                    &mut self.lru_other
                };
                if let Some(k) = lru.remove(&e.touch) {
                    lru.insert(t, k);
                }
                e.touch = t;
                e.last_ts = e.last_ts.max(ts);
            }
            None => {
                self.entries.insert(
                    key.to_string(),
                    Entry {
                        touch: t,
                        last_ts: ts,
                        ..Entry::default()
                    },
                );
                self.lru_other.insert(t, key.to_string());
            }
        }
    }

    fn on_request(&mut self, p: &SipPacket<'_>, key: &str, f: &MsgFacts, method: &Method) {
        if *method == Method::Register {
            self.on_register(p, key, f);
            return;
        }
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        if e.call.is_none() && *method == Method::Invite {
            e.call = Some(Box::new(CallB::new(p, f)));
            // Move the entry to the calls index.
            if let Some(k) = self.lru_other.remove(&e.touch) {
                self.lru_calls.insert(e.touch, k);
            }
        }
        if let Some(c) = e.call.as_mut() {
            let kept = c.call.messages.len();
            c.on_request(p, f, method);
            if !f.resend && c.call.messages.len() > kept {
                self.sources.request(p.tuple.src.ip, p.frame, p.ts, p.msg);
            }
            return;
        }
        // Out of dialog (OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY, INFO, PUBLISH, REFER, BYE or
        // ACK/CANCEL with no known call, unknown methods).
        if let Some(o) = e
            .ood
            .iter_mut()
            .rev()
            .find(|o| o.method == *method && o.src == p.tuple.src && o.cseq == f.cseq.seq)
        {
            o.retransmissions = o.retransmissions.saturating_add(1);
            return;
        }
        if e.ood.len() >= MAX_OOD_PER_CALL_ID {
            return;
        }
        let m: &SipMessage = p.msg;
        e.ood.push(OutOfDialog {
            method: method.clone(),
            cseq: f.cseq.seq,
            call_id: f.call_id.clone(),
            from: m.from_hdr().map(|h| h.uri).unwrap_or_default(),
            to: m.to_hdr().map(|h| h.uri).unwrap_or_default(),
            src: p.tuple.src,
            dst: p.tuple.dst,
            transport: p.tuple.transport,
            frame: p.frame,
            ts: p.ts,
            retransmissions: 0,
            response: None,
            user_agent: m
                .header_value(HeaderName::UserAgent)
                .map(|v| v.into_owned()),
        });
        self.sources.request(p.tuple.src.ip, p.frame, p.ts, m);
    }

    fn on_response(&mut self, p: &SipPacket<'_>, key: &str, f: &MsgFacts, code: u16) {
        if f.cseq.method == Method::Register {
            self.on_register_response(p, key, f, code);
            return;
        }
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        if let Some(c) = e.call.as_mut() {
            if c.on_response(p, f, code) {
                self.sources.progressed(p.tuple.dst.ip);
            }
            return;
        }
        let m: &SipMessage = p.msg;
        if let Some(o) = e
            .ood
            .iter_mut()
            .rev()
            .find(|o| o.method == f.cseq.method && o.cseq == f.cseq.seq && o.src == p.tuple.dst)
        {
            // Keep the final response; a provisional only until a final arrives.
            let replace = match &o.response {
                None => true,
                Some((c, ..)) => *c < 200 && code >= 200,
            };
            let progressed_before = o.response.as_ref().is_some_and(|(c, ..)| *c > 100);
            if (101..300).contains(&code) && !progressed_before && !f.resend {
                self.sources.progressed(p.tuple.dst.ip);
            }
            if replace {
                o.response = Some((
                    code,
                    m.reason().map(|r| r.into_owned()).unwrap_or_default(),
                    p.frame,
                    p.ts,
                ));
            }
        }
    }

    fn on_register(&mut self, p: &SipPacket<'_>, key: &str, f: &MsgFacts) {
        let m: &SipMessage = p.msg;
        let aor = m.to_hdr().map(|t| t.uri).unwrap_or_default();
        let mut keys = Vec::new();
        let mut all_retrans = true;
        for (contact, requested, unregister) in register_bindings(m) {
            let rk: RegKey = (aor.clone(), contact);
            let t = self.next_touch();
            let (touch, rb) = self
                .regs
                .entry(rk.clone())
                .or_insert_with(|| (0, RegB::new(rk.0.clone(), rk.1.clone())));
            self.lru_regs.remove(touch);
            *touch = t;
            self.lru_regs.insert(t, rk.clone());
            let re = rb.on_request(
                p,
                &f.call_id,
                f.cseq.seq,
                f.branch.as_deref(),
                requested,
                unregister,
            );
            all_retrans &= re;
            keys.push(rk);
        }
        if !all_retrans {
            self.sources.request(p.tuple.src.ip, p.frame, p.ts, m);
        }
        if !all_retrans && let Some(e) = self.entries.get_mut(key) {
            if e.reg_tx.len() >= MAX_REG_TX_PER_CALL_ID {
                e.reg_tx.remove(0);
            }
            e.reg_tx.push(RegTx {
                cseq: f.cseq.seq,
                branch: f.branch.clone(),
                keys,
            });
        }
    }

    fn on_register_response(&mut self, p: &SipPacket<'_>, key: &str, f: &MsgFacts, code: u16) {
        let Some(e) = self.entries.get(key) else {
            return;
        };
        let Some(tx) = e.reg_tx.iter().rev().find(|t| {
            t.cseq == f.cseq.seq
                && match (&t.branch, &f.branch) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
        }) else {
            return;
        };
        for k in &tx.keys {
            if let Some((_, rb)) = self.regs.get_mut(k) {
                rb.on_response(p, &f.call_id, f.cseq.seq, f.branch.as_deref(), code);
            }
        }
        if (200..300).contains(&code) && !f.resend {
            self.sources.progressed(p.tuple.dst.ip);
        }
    }

    /// Evict the least recently active entries of any table over its cap.
    fn enforce_caps(&mut self) {
        while self.lru_calls.len() > self.limits.max_calls.max(1) {
            let Some((_, k)) = self.lru_calls.pop_first() else {
                break;
            };
            self.evicted_calls += 1;
            self.finalise_entry(&k);
        }
        while self.lru_other.len() > self.limits.max_out_of_dialog.max(1) {
            let Some((_, k)) = self.lru_other.pop_first() else {
                break;
            };
            self.evicted_ood += 1;
            self.finalise_entry(&k);
        }
        while self.lru_regs.len() > self.limits.max_registrations.max(1) {
            let Some((_, k)) = self.lru_regs.pop_first() else {
                break;
            };
            self.evicted_regs += 1;
            if let Some((_, rb)) = self.regs.remove(&k) {
                if self.kept_regs < self.limits.max_registrations {
                    self.kept_regs += 1;
                    self.regs_done.push(rb.finalise());
                } else {
                    self.regs_not_kept += 1;
                }
            }
        }
    }

    /// Move an entry's call and out-of-dialog requests to the finished lists (the entry
    /// must already be out of its recency index).
    fn finalise_entry(&mut self, key: &str) {
        let Some(e) = self.entries.remove(key) else {
            return;
        };
        if let Some(k) = e.ended_key {
            self.ended.remove(&k);
        }
        if let Some(c) = e.call {
            if c.messages_dropped > 0 {
                self.anomalies.push(Anomaly {
                    layer: Layer::Sip,
                    kind: "sip.call_message_cap",
                    frame: c.call.first_frame,
                    detail: format!(
                        "call {} had more than {} messages: {} not kept as evidence",
                        crate::types::sanitize_text(&c.call.call_id),
                        super::call::MAX_CALL_MESSAGES,
                        c.messages_dropped
                    ),
                });
            }
            // Finished calls are kept for the report up to a cap: a scanner's million
            // unanswered INVITEs must not cost gigabytes. Beyond it they are counted (and
            // their messages stay in the sip,stat counters).
            // Calls that never got any response (a scanner's INVITEs) may fill only half of
            // the kept room, so the legitimate calls of a flooded capture are still reported.
            let call = c.finalise();
            self.calls_finalised += 1;
            let unanswered = call.transactions.iter().all(|t| t.responses.is_empty());
            let room = if unanswered {
                self.unanswered_kept < self.limits.max_kept_calls / 2
            } else {
                self.kept_calls < self.limits.max_kept_calls
            };
            if room {
                self.unanswered_kept += usize::from(unanswered);
                self.kept_calls += 1;
                self.calls_done.push(call);
            } else {
                self.calls_not_kept += 1;
            }
        }
        let room = self
            .limits
            .max_kept_out_of_dialog
            .saturating_sub(self.kept_ood);
        let n = e.ood.len();
        self.kept_ood += n.min(room);
        self.ood_done.extend(e.ood.into_iter().take(room));
        self.ood_not_kept += n.saturating_sub(room) as u64;
    }

    /// Finalise entries idle since before `now` (capture clock): calls whose dialog has
    /// ended after `ended_call_linger_ms` (`challenged_call_linger_ms` when refused with a
    /// challenge), everything else after `call_idle_timeout_ms`.
    pub fn expire(&mut self, now: Ts) {
        self.sources.expire(now);
        while let Some((&(due, _), _)) = self.ended.first_key_value() {
            if due >= now {
                break;
            }
            let Some((k, key)) = self.ended.pop_first() else {
                break;
            };
            let touch = match self.entries.get(&key) {
                Some(e) if e.ended_key == Some(k) => e.touch,
                _ => continue,
            };
            self.lru_calls.remove(&touch);
            self.finalise_entry(&key);
        }
        let cutoff = now.plus_ms(self.limits.call_idle_timeout_ms.saturating_neg());
        for calls in [true, false] {
            loop {
                let lru = if calls {
                    &self.lru_calls
                } else {
                    &self.lru_other
                };
                let Some((&t, k)) = lru.first_key_value() else {
                    break;
                };
                let idle = self.entries.get(k).is_none_or(|e| e.last_ts < cutoff);
                if !idle {
                    // Capture order: the front is the least recently active entry.
                    break;
                }
                let lru = if calls {
                    &mut self.lru_calls
                } else {
                    &mut self.lru_other
                };
                if let Some(k) = lru.remove(&t) {
                    self.finalise_entry(&k);
                }
            }
        }
    }

    /// Calls, out-of-dialog requests and registrations already finalised (idle expiry or
    /// eviction), handed over so a long capture's output can be streamed; `finish` returns
    /// whatever was not drained.
    pub fn drain_finished(&mut self) -> (Vec<SipCall>, Vec<OutOfDialog>, Vec<Registration>) {
        self.kept_calls = 0;
        (
            std::mem::take(&mut self.calls_done),
            std::mem::take(&mut self.ood_done),
            std::mem::take(&mut self.regs_done),
        )
    }

    /// The calls not yet finalised, as they stand (least recently active first): what
    /// a streaming engine weighs, with the finalised ones, to decide a stream.
    pub fn live_call_views(&self) -> impl Iterator<Item = &SipCall> + '_ {
        self.lru_calls
            .values()
            .filter_map(|k| self.entries.get(k))
            .filter_map(|e| e.call.as_ref().map(|c| &c.call))
    }

    /// Number of live (not yet finalised) calls.
    pub fn live_calls(&self) -> usize {
        self.lru_calls.len()
    }

    /// Calls seen so far: live plus finalised (for progress display).
    pub fn calls_seen(&self) -> usize {
        self.lru_calls.len() + self.calls_finalised as usize
    }

    /// End of input: everything, sorted by first frame.
    pub fn finish(mut self) -> SipOutput {
        let keys: Vec<String> = self
            .lru_calls
            .values()
            .chain(self.lru_other.values())
            .cloned()
            .collect();
        self.lru_calls.clear();
        self.lru_other.clear();
        for k in keys {
            self.finalise_entry(&k);
        }
        for (_, (_, rb)) in self.regs.drain() {
            self.regs_done.push(rb.finalise());
        }
        let mut calls = self.calls_done;
        // Ties (two calls starting in one TCP segment) by Call-ID: a total order that a
        // call finalised alone can compute too (`rules::Unit::sort_key`).
        calls.sort_by(|a, b| (a.first_frame, &a.call_id).cmp(&(b.first_frame, &b.call_id)));
        let mut regs = self.regs_done;
        let mut ood = self.ood_done;
        report_order(&mut regs, &mut ood);
        let mut evicted = Vec::new();
        for (name, n) in [
            ("calls", self.evicted_calls),
            ("calls_not_kept", self.calls_not_kept),
            ("out_of_dialog", self.evicted_ood),
            ("out_of_dialog_not_kept", self.ood_not_kept),
            ("registrations", self.evicted_regs),
            ("registrations_not_kept", self.regs_not_kept),
            ("request_sources_not_kept", self.sources.not_kept),
        ] {
            if n > 0 {
                evicted.push((name, n));
            }
        }
        SipOutput {
            calls,
            registrations: regs,
            out_of_dialog: ood,
            stats: self.stats.finish(),
            sources: self.sources.finish(),
            anomalies: self.anomalies,
            evicted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CallState, MsgKind, RegState, SipLimits, SipOutput, SipPacket};
    use super::SipState;
    use crate::sip::wire::{Method, parse};
    use crate::types::{Endpoint, FiveTuple, FrameRef, Transport, Ts};
    use std::sync::Arc;

    const A: &str = "10.0.0.1:5060";
    const B: &str = "10.0.0.2:5060";
    const P: &str = "10.0.0.9:5060";

    fn ep(s: &str) -> Endpoint {
        let (ip, port) = s.rsplit_once(':').unwrap();
        Endpoint::new(ip.parse().unwrap(), port.parse().unwrap())
    }

    struct H {
        st: SipState,
        frame: u64,
    }

    impl H {
        fn new() -> H {
            H::with(SipLimits::default())
        }
        fn with(l: SipLimits) -> H {
            H {
                st: SipState::new(l),
                frame: 0,
            }
        }
        fn feed(&mut self, src: &str, dst: &str, t_ms: i64, text: &str) {
            self.feed_t(src, dst, t_ms, text, Transport::Udp)
        }
        fn feed_t(&mut self, src: &str, dst: &str, t_ms: i64, text: &str, tr: Transport) {
            self.frame += 1;
            let raw = text.replace('\n', "\r\n");
            let msg = Arc::new(parse(raw.as_bytes()).expect("test message parses"));
            let sdp = crate::sip::state::message_sdp(&msg);
            let p = SipPacket {
                msg: &msg,
                frame: FrameRef::new(0, self.frame),
                ts: Ts(1_700_000_000_000_000_000 + t_ms * 1_000_000),
                tuple: FiveTuple {
                    src: ep(src),
                    dst: ep(dst),
                    transport: tr,
                },
                size: raw.len(),
                fragmented: false,
                sdp: sdp.as_ref(),
            };
            self.st.on_message(&p);
        }
        fn done(self) -> SipOutput {
            self.st.finish()
        }
    }

    const SDP_A: &str =
        "v=0\no=a 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0\n";
    const SDP_B: &str =
        "v=0\no=b 7 1 IN IP4 10.0.0.2\ns=-\nc=IN IP4 10.0.0.2\nt=0 0\nm=audio 5000 RTP/AVP 0\n";
    const SDP_HOLD: &str = "v=0\no=a 1 2 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0\na=sendonly\n";

    /// A request from A's side (From tag `fa`).
    #[allow(clippy::too_many_arguments)]
    fn req(
        method: &str,
        cid: &str,
        cseq: u32,
        cm: &str,
        branch: &str,
        from_tag: &str,
        to_tag: Option<&str>,
        extra: &str,
        body: &str,
    ) -> String {
        let tt = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let ct = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\n".to_string()
        };
        format!(
            "{method} sip:bob@10.0.0.2 SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\nFrom: <sip:alice@ex.com>;tag={from_tag}\nTo: <sip:bob@ex.com>{tt}\nCall-ID: {cid}\nCSeq: {cseq} {cm}\nUser-Agent: PhoneA\n{extra}{ct}Content-Length: {}\n\n{body}",
            body.replace('\n', "\r\n").len()
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn resp(
        code: u16,
        reason: &str,
        cid: &str,
        cseq: u32,
        cm: &str,
        branch: &str,
        from_tag: &str,
        to_tag: Option<&str>,
        extra: &str,
        body: &str,
    ) -> String {
        let tt = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let ct = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\n".to_string()
        };
        format!(
            "SIP/2.0 {code} {reason}\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\nFrom: <sip:alice@ex.com>;tag={from_tag}\nTo: <sip:bob@ex.com>{tt}\nCall-ID: {cid}\nCSeq: {cseq} {cm}\nServer: PbxB\n{extra}{ct}Content-Length: {}\n\n{body}",
            body.replace('\n', "\r\n").len()
        )
    }

    #[test]
    fn normal_call_completed_with_offer_answer_and_setup_time() {
        let mut h = H::new();
        h.feed(
            A,
            B,
            0,
            &req(
                "INVITE", "c1", 1, "INVITE", "z9hG4bK1", "fa", None, "", SDP_A,
            ),
        );
        h.feed(
            B,
            A,
            10,
            &resp(
                100, "Trying", "c1", 1, "INVITE", "z9hG4bK1", "fa", None, "", "",
            ),
        );
        h.feed(
            B,
            A,
            50,
            &resp(
                180,
                "Ringing",
                "c1",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("tb"),
                "",
                "",
            ),
        );
        h.feed(
            B,
            A,
            2000,
            &resp(
                200,
                "OK fine",
                "c1",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("tb"),
                "",
                SDP_B,
            ),
        );
        h.feed(
            A,
            B,
            2050,
            &req("ACK", "c1", 1, "ACK", "z9hG4bK2", "fa", Some("tb"), "", ""),
        );
        h.feed(
            B,
            A,
            9000,
            &req("BYE", "c1", 1, "BYE", "z9hG4bK3", "tb", Some("fa"), "", "").replace(
                "From: <sip:alice@ex.com>;tag=tb\nTo: <sip:bob@ex.com>;tag=fa",
                "From: <sip:bob@ex.com>;tag=tb\nTo: <sip:alice@ex.com>;tag=fa",
            ),
        );
        h.feed(
            A,
            B,
            9010,
            &resp(
                200,
                "OK",
                "c1",
                1,
                "BYE",
                "z9hG4bK3",
                "tb",
                Some("fa"),
                "",
                "",
            ),
        );
        let out = h.done();
        assert_eq!(out.calls.len(), 1);
        let c = &out.calls[0];
        assert_eq!(c.state, CallState::Completed);
        assert_eq!(c.final_code, Some(200));
        assert_eq!(c.final_reason.as_deref(), Some("OK fine"));
        assert_eq!(c.caller, ep(A));
        assert!(c.ringing_ts.is_some() && c.answer_ts.is_some() && c.ack_ts.is_some());
        let bye = c.bye.as_ref().unwrap();
        assert!(!bye.by_caller, "BYE came from the callee");
        assert_eq!(c.messages.len(), 7);
        assert_eq!(c.user_agent.as_deref(), Some("PhoneA"));
        assert_eq!(c.server.as_deref(), Some("PbxB"));
        assert_eq!(c.sdp.len(), 1);
        let x = &c.sdp[0];
        assert!(x.offer.from_caller);
        assert_eq!(x.offer.carried_in, "INVITE");
        let ans = x.answer.as_ref().unwrap();
        assert!(!ans.from_caller);
        assert_eq!(ans.carried_in, "200");
        assert!(
            Arc::ptr_eq(&ans.sdp, c.messages[3].sdp.as_ref().unwrap()),
            "one parse shared"
        );
        assert_eq!(ans.sdp.audio().map(|m| m.port), Some(5000));
        assert_eq!(c.to_tags, vec!["tb".to_string()]);
        let st = &out.stats;
        assert_eq!(st.messages, 7);
        assert_eq!(st.resent, 0);
        assert_eq!(st.requests.get("INVITE"), Some(&1));
        assert_eq!(st.requests.get("BYE"), Some(&1));
        assert_eq!(st.responses.get(&200), Some(&2));
        let s = st.setup_time_ms.unwrap();
        assert_eq!(
            (s.count, s.min as u64, s.max as u64, s.avg as u64),
            (1, 2050, 2050, 2050)
        );
        assert_eq!(c.transactions.len(), 3, "INVITE, ACK(2xx), BYE");
        assert_eq!(c.transactions[0].final_code, Some(200));
    }

    #[test]
    fn challenge_then_success_is_not_rejected() {
        let mut h = H::new();
        h.feed(
            A,
            B,
            0,
            &req(
                "INVITE", "c2", 1, "INVITE", "z9hG4bKa", "fa", None, "", SDP_A,
            ),
        );
        h.feed(
            B,
            A,
            5,
            &resp(
                407,
                "Proxy Authentication Required",
                "c2",
                1,
                "INVITE",
                "z9hG4bKa",
                "fa",
                Some("x1"),
                "Proxy-Authenticate: Digest realm=\"ex\", nonce=\"n1\"\n",
                "",
            ),
        );
        h.feed(
            A,
            B,
            6,
            &req("ACK", "c2", 1, "ACK", "z9hG4bKa", "fa", Some("x1"), "", ""),
        );
        h.feed(A, B, 10, &req("INVITE", "c2", 2, "INVITE", "z9hG4bKb", "fa", None, "Proxy-Authorization: Digest username=\"alice\", realm=\"ex\", nonce=\"n1\", uri=\"sip:bob@ex.com\", response=\"abc\"\n", SDP_A));
        h.feed(
            B,
            A,
            20,
            &resp(
                200,
                "OK",
                "c2",
                2,
                "INVITE",
                "z9hG4bKb",
                "fa",
                Some("tb"),
                "",
                SDP_B,
            ),
        );
        h.feed(
            A,
            B,
            30,
            &req("ACK", "c2", 2, "ACK", "z9hG4bKc", "fa", Some("tb"), "", ""),
        );
        let out = h.done();
        let c = &out.calls[0];
        assert_eq!(c.state, CallState::InCall);
        assert_eq!(c.final_code, Some(200));
        assert_eq!(c.reinvites, 0);
        // INVITE#1 (with its ACK), INVITE#2, ACK for 2xx.
        assert_eq!(c.transactions.len(), 3);
        assert_eq!(c.transactions[0].final_code, Some(407));
        assert_eq!(c.transactions[2].method, Method::Ack);
        // Both ACKs give a setup time (Wireshark: ACK − INVITE of the same CSeq).
        assert_eq!(out.stats.setup_time_ms.unwrap().count, 2);
    }

    #[test]
    fn challenge_loop_is_rejected() {
        let mut h = H::new();
        for (i, t) in [(1u32, 0i64), (2, 100), (3, 200)] {
            let br = format!("z9hG4bK{i}");
            let cred = if i > 1 {
                "Authorization: Digest username=\"alice\", realm=\"ex\", nonce=\"n\", response=\"bad\"\n"
            } else {
                ""
            };
            h.feed(
                A,
                B,
                t,
                &req("INVITE", "c3", i, "INVITE", &br, "fa", None, cred, ""),
            );
            h.feed(
                B,
                A,
                t + 5,
                &resp(
                    401,
                    "Unauthorized",
                    "c3",
                    i,
                    "INVITE",
                    &br,
                    "fa",
                    Some("x"),
                    "WWW-Authenticate: Digest realm=\"ex\", nonce=\"n\"\n",
                    "",
                ),
            );
            h.feed(
                A,
                B,
                t + 6,
                &req("ACK", "c3", i, "ACK", &br, "fa", Some("x"), "", ""),
            );
        }
        let c = &h.done().calls[0];
        assert_eq!(c.state, CallState::Rejected);
        assert_eq!(c.final_code, Some(401));
        assert_eq!(c.transactions.len(), 3);
    }

    #[test]
    fn cancel_then_487_is_cancelled() {
        let mut h = H::new();
        h.feed(
            A,
            B,
            0,
            &req(
                "INVITE", "c4", 1, "INVITE", "z9hG4bK1", "fa", None, "", SDP_A,
            ),
        );
        h.feed(
            B,
            A,
            50,
            &resp(
                180,
                "Ringing",
                "c4",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("tb"),
                "",
                "",
            ),
        );
        h.feed(
            A,
            B,
            3000,
            &req("CANCEL", "c4", 1, "CANCEL", "z9hG4bK1", "fa", None, "", ""),
        );
        h.feed(
            A,
            B,
            3500,
            &req("CANCEL", "c4", 1, "CANCEL", "z9hG4bK1", "fa", None, "", ""),
        );
        h.feed(
            B,
            A,
            3010,
            &resp(
                200,
                "OK",
                "c4",
                1,
                "CANCEL",
                "z9hG4bK1",
                "fa",
                Some("tb"),
                "",
                "",
            ),
        );
        h.feed(
            B,
            A,
            3020,
            &resp(
                487,
                "Request Terminated",
                "c4",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("tb"),
                "",
                "",
            ),
        );
        h.feed(
            A,
            B,
            3030,
            &req("ACK", "c4", 1, "ACK", "z9hG4bK1", "fa", Some("tb"), "", ""),
        );
        let out = h.done();
        let c = &out.calls[0];
        assert_eq!(c.state, CallState::Cancelled);
        assert_eq!(
            (c.final_code, c.final_reason.as_deref()),
            (Some(487), Some("Request Terminated"))
        );
        assert!(c.cancel.is_some());
        // INVITE and CANCEL transactions (same branch, different method); ACK joins the INVITE.
        assert_eq!(c.transactions.len(), 2);
        assert_eq!(c.transactions[1].method, Method::Cancel);
        assert_eq!(c.transactions[1].retransmissions, 1);
        // Wireshark never flags CANCEL copies as resent.
        assert_eq!(out.stats.resent, 0);
        assert!(c.answer_ts.is_none() && c.ack_ts.is_none());
    }

    #[test]
    fn busy_is_rejected_with_wire_phrase() {
        let mut h = H::new();
        h.feed(
            A,
            B,
            0,
            &req("INVITE", "c5", 1, "INVITE", "z9hG4bK1", "fa", None, "", ""),
        );
        h.feed(
            B,
            A,
            40,
            &resp(
                486,
                "Busy  Here Now",
                "c5",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("tb"),
                "",
                "",
            ),
        );
        h.feed(
            A,
            B,
            41,
            &req("ACK", "c5", 1, "ACK", "z9hG4bK1", "fa", Some("tb"), "", ""),
        );
        let out = h.done();
        let c = &out.calls[0];
        assert_eq!(c.state, CallState::Rejected);
        assert_eq!(c.final_code, Some(486));
        assert_eq!(c.final_reason.as_deref(), Some("Busy  Here Now"));
        assert_eq!(out.stats.responses.get(&486), Some(&1));
    }

    #[test]
    fn forking_records_each_early_dialog() {
        let mut h = H::new();
        h.feed(
            A,
            B,
            0,
            &req(
                "INVITE", "c6", 1, "INVITE", "z9hG4bK1", "fa", None, "", SDP_A,
            ),
        );
        h.feed(
            B,
            A,
            10,
            &resp(
                180,
                "Ringing",
                "c6",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("t1"),
                "",
                "",
            ),
        );
        h.feed(
            B,
            A,
            11,
            &resp(
                180,
                "Ringing",
                "c6",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("t2"),
                "",
                "",
            ),
        );
        h.feed(
            B,
            A,
            12,
            &resp(
                180,
                "Ringing",
                "c6",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("t2"),
                "",
                "",
            ),
        );
        h.feed(
            B,
            A,
            900,
            &resp(
                200,
                "OK",
                "c6",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("t2"),
                "",
                SDP_B,
            ),
        );
        let c = &h.done().calls[0];
        assert_eq!(c.to_tags, vec!["t1".to_string(), "t2".to_string()]);
        let r = &c.transactions[0].responses;
        assert_eq!(r.len(), 4);
        assert_eq!(
            r.iter().map(|x| x.3).collect::<Vec<_>>(),
            vec![false, false, true, false]
        );
        assert_eq!(c.state, CallState::InCall);
    }

    #[test]
    fn retransmitted_invite_counted_like_wireshark() {
        let mut h = H::new();
        let inv = req("INVITE", "c7", 1, "INVITE", "z9hG4bK1", "fa", None, "", "");
        h.feed(A, B, 0, &inv);
        h.feed(A, B, 500, &inv);
        h.feed(A, B, 1500, &inv);
        let ok = resp(
            200,
            "OK",
            "c7",
            1,
            "INVITE",
            "z9hG4bK1",
            "fa",
            Some("tb"),
            "",
            "",
        );
        h.feed(B, A, 1600, &ok);
        h.feed(B, A, 2100, &ok);
        let out = h.done();
        assert_eq!(out.stats.resent, 3);
        let c = &out.calls[0];
        let flags: Vec<bool> = c.messages.iter().map(|m| m.retransmission).collect();
        assert_eq!(flags, vec![false, true, true, false, true]);
        assert_eq!(c.transactions[0].requests, 3);
        assert_eq!(c.transactions[0].retransmissions, 2);
        // Over TCP nothing is a resend.
        let mut h = H::new();
        h.feed_t(A, B, 0, &inv, Transport::Tcp);
        h.feed_t(A, B, 500, &inv, Transport::Tcp);
        assert_eq!(h.done().stats.resent, 0);
    }

    #[test]
    fn proxy_forward_is_not_a_retransmission() {
        let mut h = H::new();
        h.feed(
            A,
            P,
            0,
            &req(
                "INVITE",
                "c8",
                1,
                "INVITE",
                "z9hG4bKua",
                "fa",
                None,
                "",
                SDP_A,
            ),
        );
        let fwd = req("INVITE", "c8", 1, "INVITE", "z9hG4bKpx", "fa", None, "", SDP_A)
            .replace("Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKpx", "Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKpx\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKua");
        h.feed(P, B, 5, &fwd);
        let out = h.done();
        assert_eq!(out.stats.resent, 0);
        let c = &out.calls[0];
        assert_eq!(c.transactions.len(), 2);
        assert!(c.transactions.iter().all(|t| t.retransmissions == 0));
        assert!(c.messages.iter().all(|m| !m.retransmission));
    }

    #[test]
    fn reinvite_hold_is_counted_with_its_exchange() {
        let mut h = H::new();
        h.feed(
            A,
            B,
            0,
            &req(
                "INVITE", "c9", 1, "INVITE", "z9hG4bK1", "fa", None, "", SDP_A,
            ),
        );
        h.feed(
            B,
            A,
            10,
            &resp(
                200,
                "OK",
                "c9",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("tb"),
                "",
                SDP_B,
            ),
        );
        h.feed(
            A,
            B,
            20,
            &req("ACK", "c9", 1, "ACK", "z9hG4bK2", "fa", Some("tb"), "", ""),
        );
        h.feed(
            A,
            B,
            5000,
            &req(
                "INVITE",
                "c9",
                2,
                "INVITE",
                "z9hG4bK3",
                "fa",
                Some("tb"),
                "",
                SDP_HOLD,
            ),
        );
        h.feed(
            B,
            A,
            5010,
            &resp(
                200,
                "OK",
                "c9",
                2,
                "INVITE",
                "z9hG4bK3",
                "fa",
                Some("tb"),
                "",
                SDP_B,
            ),
        );
        h.feed(
            A,
            B,
            5020,
            &req("ACK", "c9", 2, "ACK", "z9hG4bK4", "fa", Some("tb"), "", ""),
        );
        let c = &h.done().calls[0];
        assert_eq!(c.reinvites, 1);
        assert_eq!(c.sdp.len(), 2);
        let hold = &c.sdp[1];
        assert!(hold.offer.from_caller);
        let m = hold.offer.sdp.media.first().unwrap();
        assert_eq!(
            hold.offer.sdp.media_direction(m),
            crate::sdp::Direction::SendOnly
        );
        assert!(hold.answer.is_some());
        assert_eq!(c.state, CallState::InCall);
    }

    #[test]
    fn late_offer_in_200_answered_in_ack() {
        let mut h = H::new();
        h.feed(
            A,
            B,
            0,
            &req("INVITE", "c10", 1, "INVITE", "z9hG4bK1", "fa", None, "", ""),
        );
        h.feed(
            B,
            A,
            10,
            &resp(
                200,
                "OK",
                "c10",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("tb"),
                "",
                SDP_B,
            ),
        );
        h.feed(
            A,
            B,
            20,
            &req(
                "ACK",
                "c10",
                1,
                "ACK",
                "z9hG4bK2",
                "fa",
                Some("tb"),
                "",
                SDP_A,
            ),
        );
        let c = &h.done().calls[0];
        assert_eq!(c.sdp.len(), 1);
        let x = &c.sdp[0];
        assert_eq!(
            (x.offer.carried_in.as_str(), x.offer.from_caller),
            ("200", false)
        );
        let a = x.answer.as_ref().unwrap();
        assert_eq!((a.carried_in.as_str(), a.from_caller), ("ACK", true));
    }

    #[test]
    fn rfc2543_fallback_matches_without_magic_cookie() {
        let mut h = H::new();
        // Branch without z9hG4bK: transactions keyed by From tag + CSeq + top Via sent-by.
        let inv = req("INVITE", "c11", 5, "INVITE", "old1", "fa", None, "", "");
        h.feed(A, B, 0, &inv);
        h.feed(A, B, 500, &inv);
        h.feed(
            B,
            A,
            600,
            &resp(
                200,
                "OK",
                "c11",
                5,
                "INVITE",
                "old1",
                "fa",
                Some("tb"),
                "",
                SDP_B,
            ),
        );
        // The RFC 2543 ACK reuses the INVITE's key and answers the late offer.
        h.feed(
            A,
            B,
            700,
            &req("ACK", "c11", 5, "ACK", "old1", "fa", Some("tb"), "", SDP_A),
        );
        let c = &h.done().calls[0];
        assert_eq!(c.transactions.len(), 1);
        assert_eq!(c.transactions[0].retransmissions, 1);
        assert_eq!(c.transactions[0].final_code, Some(200));
        assert!(c.ack_ts.is_some());
        let a = c.sdp[0]
            .answer
            .as_ref()
            .expect("late offer answered in ACK");
        assert_eq!(a.carried_in, "ACK");
        assert_eq!(c.state, CallState::InCall);
    }

    #[test]
    fn update_offer_answer_and_183_then_200_new_version() {
        let mut h = H::new();
        h.feed(
            A,
            B,
            0,
            &req(
                "INVITE", "c12", 1, "INVITE", "z9hG4bK1", "fa", None, "", SDP_A,
            ),
        );
        h.feed(
            B,
            A,
            10,
            &resp(
                183,
                "Session Progress",
                "c12",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("tb"),
                "",
                SDP_B,
            ),
        );
        h.feed(
            B,
            A,
            20,
            &resp(
                200,
                "OK",
                "c12",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("tb"),
                "",
                SDP_HOLD,
            ),
        );
        h.feed(
            A,
            B,
            30,
            &req("ACK", "c12", 1, "ACK", "z9hG4bK2", "fa", Some("tb"), "", ""),
        );
        h.feed(
            A,
            B,
            40,
            &req(
                "UPDATE",
                "c12",
                2,
                "UPDATE",
                "z9hG4bK3",
                "fa",
                Some("tb"),
                "",
                SDP_HOLD,
            ),
        );
        h.feed(
            B,
            A,
            50,
            &resp(
                200,
                "OK",
                "c12",
                2,
                "UPDATE",
                "z9hG4bK3",
                "fa",
                Some("tb"),
                "",
                SDP_B,
            ),
        );
        let c = &h.done().calls[0];
        let carried: Vec<(&str, Option<&str>)> = c
            .sdp
            .iter()
            .map(|x| {
                (
                    x.offer.carried_in.as_str(),
                    x.answer.as_ref().map(|a| a.carried_in.as_str()),
                )
            })
            .collect();
        assert_eq!(
            carried,
            vec![
                ("INVITE", Some("183")),
                ("INVITE", Some("200")),
                ("UPDATE", Some("200"))
            ]
        );
        assert!(c.sdp[2].offer.from_caller && !c.sdp[2].answer.as_ref().unwrap().from_caller);
        assert_eq!(c.reinvites, 0, "UPDATE is not a re-INVITE");
    }

    #[test]
    fn mutated_messages_never_panic() {
        let base = [
            req(
                "INVITE", "f1", 1, "INVITE", "z9hG4bK1", "fa", None, "", SDP_A,
            ),
            resp(
                200,
                "OK",
                "f1",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("tb"),
                "Contact: <sip:b@x>;expires=5\n",
                SDP_B,
            ),
            req("ACK", "f1", 1, "ACK", "z9hG4bK2", "fa", Some("tb"), "", ""),
            register(
                1,
                "z9hG4bKr",
                "Contact: <sip:a@x>;expires=abc, *\nExpires: 99999999999\n",
            ),
            reg_resp(
                423,
                "Interval Too Brief",
                1,
                "z9hG4bKr",
                "Min-Expires: -5\n",
            ),
        ];
        let mut h = H::with(SipLimits {
            max_calls: 3,
            max_out_of_dialog: 3,
            max_registrations: 3,
            ..SipLimits::default()
        });
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut fed = 0;
        for i in 0..3000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let Some(src) = base.get(i as usize % base.len()) else {
                continue;
            };
            let mut b = src.replace('\n', "\r\n").into_bytes();
            for k in 0..(x % 6) {
                let pos = ((x >> (8 * k)) as usize) % b.len().max(1);
                if let Some(c) = b.get_mut(pos) {
                    *c = (x >> (k + 3)) as u8;
                }
            }
            if x.is_multiple_of(5) {
                b.truncate((x as usize >> 9) % (b.len() + 1));
            }
            let Some(m) = parse(&b) else { continue };
            let msg = Arc::new(m);
            let sdp = crate::sip::state::message_sdp(&msg);
            let p = SipPacket {
                msg: &msg,
                frame: FrameRef::new(0, u64::from(i) + 1),
                ts: Ts(i64::from(i) * 7_000_000),
                tuple: FiveTuple {
                    src: ep(if x.is_multiple_of(2) { A } else { B }),
                    dst: ep(P),
                    transport: Transport::Udp,
                },
                size: b.len(),
                fragmented: false,
                sdp: sdp.as_ref(),
            };
            h.st.on_message(&p);
            fed += 1;
            if i.is_multiple_of(500) {
                h.st.expire(Ts(i64::from(i) * 7_000_000));
            }
        }
        let out = h.done();
        assert!(fed > 1000);
        // Messages cut inside their headers are not tapped (Wireshark throws first).
        assert!(out.stats.messages <= fed && out.stats.messages > fed / 2);
    }

    /// The request tap counts what the model keeps: a call's requests but not their
    /// retransmissions, each new out-of-dialog transaction, each new REGISTER once (not
    /// per binding); responses never.
    #[test]
    fn request_sources_count_each_kept_request_once() {
        let mut h = H::new();
        let inv = req(
            "INVITE", "c1", 1, "INVITE", "z9hG4bK1", "fa", None, "", SDP_A,
        );
        h.feed(A, B, 0, &inv);
        h.feed(A, B, 500, &inv);
        h.feed(
            B,
            A,
            600,
            &resp(
                486,
                "Busy Here",
                "c1",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("tb"),
                "",
                "",
            ),
        );
        h.feed(
            A,
            B,
            700,
            &req("ACK", "c1", 1, "ACK", "z9hG4bK1", "fa", Some("tb"), "", ""),
        );
        let opt = req(
            "OPTIONS", "o1", 5, "OPTIONS", "z9hG4bKo", "fo", None, "", "",
        );
        h.feed(A, B, 1_000, &opt);
        h.feed(A, B, 1_500, &opt);
        let two = "Contact: <sip:alice@10.0.0.1:5060>\nContact: <sip:alice@10.0.0.1:5062>\n";
        h.feed(A, B, 2_000, &register(1, "z9hG4bKr1", two));
        h.feed(A, B, 2_500, &register(1, "z9hG4bKr1", two));
        let out = h.done();
        assert_eq!(
            out.sources.len(),
            1,
            "responses come from B and are not requests"
        );
        let s = &out.sources[0];
        assert_eq!(s.ip.to_string(), "10.0.0.1");
        // INVITE, ACK, OPTIONS, REGISTER.
        assert_eq!(s.requests, 4);
        assert_eq!(s.first.method, Method::Invite);
        assert_eq!(s.first.user_agent.as_deref(), Some("PhoneA"));
        assert_eq!(s.busiest_minute.0, 1, "one INVITE to bob");
        assert_eq!(
            s.users.len(),
            2,
            "bob (INVITE, ACK, OPTIONS) and alice (REGISTER)"
        );
    }

    /// What `security.scanner` weighs against the distinct users: requests that expect
    /// a response (ACKs do not) and those that rang or succeeded, each transaction once
    /// however many provisional, final and retransmitted responses it got.
    #[test]
    fn request_sources_count_progressed_transactions_once() {
        let mut h = H::new();
        let inv = req(
            "INVITE", "c1", 1, "INVITE", "z9hG4bK1", "fa", None, "", SDP_A,
        );
        h.feed(A, B, 0, &inv);
        let ringing = resp(
            180,
            "Ringing",
            "c1",
            1,
            "INVITE",
            "z9hG4bK1",
            "fa",
            Some("tb"),
            "",
            "",
        );
        h.feed(B, A, 100, &ringing);
        h.feed(B, A, 150, &ringing);
        let ok = resp(
            200,
            "OK",
            "c1",
            1,
            "INVITE",
            "z9hG4bK1",
            "fa",
            Some("tb"),
            "",
            "",
        );
        h.feed(B, A, 200, &ok);
        h.feed(B, A, 700, &ok);
        h.feed(
            A,
            B,
            710,
            &req("ACK", "c1", 1, "ACK", "z9hG4bK9", "fa", Some("tb"), "", ""),
        );
        let inv2 = req("INVITE", "c2", 1, "INVITE", "z9hG4bK2", "fa", None, "", "");
        h.feed(A, B, 1_000, &inv2);
        let nf = resp(
            404,
            "Not Found",
            "c2",
            1,
            "INVITE",
            "z9hG4bK2",
            "fa",
            Some("t2"),
            "",
            "",
        );
        h.feed(B, A, 1_010, &nf);
        h.feed(
            A,
            B,
            1_020,
            &req("ACK", "c2", 1, "ACK", "z9hG4bK2", "fa", Some("t2"), "", ""),
        );
        h.feed(
            A,
            B,
            2_000,
            &req(
                "OPTIONS", "o1", 5, "OPTIONS", "z9hG4bKo", "fo", None, "", "",
            ),
        );
        h.feed(
            B,
            A,
            2_010,
            &resp(
                200,
                "OK",
                "o1",
                5,
                "OPTIONS",
                "z9hG4bKo",
                "fo",
                Some("x"),
                "",
                "",
            ),
        );
        let c = "Contact: <sip:alice@10.0.0.1:5060>\n";
        h.feed(A, B, 3_000, &register(1, "z9hG4bKr1", c));
        h.feed(
            B,
            A,
            3_010,
            &reg_resp(401, "Unauthorized", 1, "z9hG4bKr1", ""),
        );
        h.feed(A, B, 3_020, &register(2, "z9hG4bKr2", c));
        h.feed(B, A, 3_030, &reg_resp(200, "OK", 2, "z9hG4bKr2", c));
        let out = h.done();
        assert_eq!(out.sources.len(), 1);
        let s = &out.sources[0];
        // INVITE, ACK, INVITE, ACK, OPTIONS, REGISTER, REGISTER.
        assert_eq!(s.requests, 7);
        assert_eq!(s.answerable, 5);
        // c1's INVITE (not again for its retransmitted 180, its 200 or their copies), the
        // OPTIONS and the second REGISTER; not the 404, nor the 401.
        assert_eq!(s.progressed, 3);
    }

    fn register(cseq: u32, branch: &str, extra: &str) -> String {
        format!(
            "REGISTER sip:ex.com SIP/2.0\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\nFrom: <sip:alice@ex.com>;tag=r1\nTo: <sip:alice@ex.com>\nCall-ID: reg1\nCSeq: {cseq} REGISTER\nUser-Agent: PhoneA\n{extra}Content-Length: 0\n\n"
        )
    }
    fn reg_resp(code: u16, reason: &str, cseq: u32, branch: &str, extra: &str) -> String {
        format!(
            "SIP/2.0 {code} {reason}\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\nFrom: <sip:alice@ex.com>;tag=r1\nTo: <sip:alice@ex.com>;tag=s\nCall-ID: reg1\nCSeq: {cseq} REGISTER\n{extra}Content-Length: 0\n\n"
        )
    }

    #[test]
    fn register_challenge_then_granted_expiry() {
        let mut h = H::new();
        let c = "Contact: <sip:alice@10.0.0.1:5060>\nExpires: 3600\n";
        h.feed(A, B, 0, &register(1, "z9hG4bKr1", c));
        h.feed(A, B, 500, &register(1, "z9hG4bKr1", c));
        h.feed(
            B,
            A,
            600,
            &reg_resp(
                401,
                "Unauthorized",
                1,
                "z9hG4bKr1",
                "WWW-Authenticate: Digest realm=\"ex\", nonce=\"n\"\n",
            ),
        );
        let auth = format!(
            "{c}Authorization: Digest username=\"alice\", realm=\"ex\", nonce=\"n\", uri=\"sip:ex.com\", response=\"0123\"\n"
        );
        h.feed(A, B, 700, &register(2, "z9hG4bKr2", &auth));
        h.feed(
            B,
            A,
            800,
            &reg_resp(
                200,
                "OK",
                2,
                "z9hG4bKr2",
                "Contact: <sip:alice@10.0.0.1:5060>;expires=1800\nExpires: 3600\n",
            ),
        );
        let out = h.done();
        assert!(out.calls.is_empty() && out.out_of_dialog.is_empty());
        assert_eq!(out.registrations.len(), 1);
        let r = &out.registrations[0];
        assert_eq!(
            (r.aor.as_str(), r.contact.as_str()),
            ("sip:alice@ex.com", "sip:alice@10.0.0.1:5060")
        );
        assert_eq!(r.state, RegState::Registered);
        assert_eq!(r.attempts.len(), 2);
        assert_eq!(r.attempts[0].retransmissions, 1);
        assert_eq!(r.attempts[0].requested_expires, Some(3600));
        let r0 = r.attempts[0].response.as_ref().unwrap();
        assert_eq!(r0.code, 401);
        assert_eq!(
            r0.challenge.as_ref().and_then(|c| c.realm.as_deref()),
            Some("ex")
        );
        assert_eq!(
            r.attempts[1]
                .credentials
                .as_ref()
                .and_then(|c| c.username.as_deref()),
            Some("alice")
        );
        assert_eq!(
            r.attempts[1].response.as_ref().unwrap().granted_expires,
            Some(1800)
        );
        assert_eq!(r.user_agent.as_deref(), Some("PhoneA"));
        assert_eq!(out.stats.resent, 1);
    }

    #[test]
    fn register_wrong_password_loop_fails() {
        let mut h = H::new();
        let c = "Contact: <sip:alice@10.0.0.1:5060>\n";
        h.feed(A, B, 0, &register(1, "z9hG4bKr1", c));
        h.feed(
            B,
            A,
            5,
            &reg_resp(
                401,
                "Unauthorized",
                1,
                "z9hG4bKr1",
                "WWW-Authenticate: Digest realm=\"ex\", nonce=\"n\"\n",
            ),
        );
        let auth = format!(
            "{c}Authorization: Digest username=\"alice\", realm=\"ex\", nonce=\"n\", response=\"bad\"\n"
        );
        h.feed(A, B, 10, &register(2, "z9hG4bKr2", &auth));
        h.feed(
            B,
            A,
            15,
            &reg_resp(
                401,
                "Unauthorized",
                2,
                "z9hG4bKr2",
                "WWW-Authenticate: Digest realm=\"ex\", nonce=\"n2\"\n",
            ),
        );
        assert_eq!(h.done().registrations[0].state, RegState::Failed);
        // Only the first challenge: still the normal first step.
        let mut h = H::new();
        h.feed(A, B, 0, &register(1, "z9hG4bKr1", c));
        h.feed(
            B,
            A,
            5,
            &reg_resp(
                401,
                "Unauthorized",
                1,
                "z9hG4bKr1",
                "WWW-Authenticate: Digest realm=\"ex\", nonce=\"n\"\n",
            ),
        );
        assert_eq!(h.done().registrations[0].state, RegState::Challenged);
    }

    #[test]
    fn unregister_and_interval_too_brief() {
        let mut h = H::new();
        h.feed(
            A,
            B,
            0,
            &register(1, "z9hG4bKu1", "Contact: *\nExpires: 0\n"),
        );
        h.feed(B, A, 5, &reg_resp(200, "OK", 1, "z9hG4bKu1", ""));
        let out = h.done();
        let r = &out.registrations[0];
        assert_eq!(r.contact, "*");
        assert!(r.attempts[0].unregister);
        assert_eq!(r.state, RegState::Unregistered);

        let mut h = H::new();
        h.feed(
            A,
            B,
            0,
            &register(1, "z9hG4bKm1", "Contact: <sip:alice@10.0.0.1>;expires=30\n"),
        );
        h.feed(
            B,
            A,
            5,
            &reg_resp(
                423,
                "Interval Too Brief",
                1,
                "z9hG4bKm1",
                "Min-Expires: 60\n",
            ),
        );
        let out = h.done();
        let r = &out.registrations[0];
        assert_eq!(r.state, RegState::Failed);
        assert_eq!(r.attempts[0].requested_expires, Some(30));
        assert_eq!(
            r.attempts[0].response.as_ref().unwrap().min_expires,
            Some(60)
        );
    }

    #[test]
    fn options_with_and_without_answer() {
        let mut h = H::new();
        let o = |cid: &str, br: &str| req("OPTIONS", cid, 7, "OPTIONS", br, "fo", None, "", "");
        h.feed(A, B, 0, &o("o1", "z9hG4bKo1"));
        h.feed(
            B,
            A,
            3,
            &resp(
                200,
                "OK",
                "o1",
                7,
                "OPTIONS",
                "z9hG4bKo1",
                "fo",
                Some("q"),
                "",
                "",
            ),
        );
        h.feed(A, B, 10, &o("o2", "z9hG4bKo2"));
        h.feed(A, B, 510, &o("o2", "z9hG4bKo2"));
        let out = h.done();
        assert!(out.calls.is_empty());
        assert_eq!(out.out_of_dialog.len(), 2);
        let a = &out.out_of_dialog[0];
        assert_eq!(a.method, Method::Options);
        assert_eq!(
            a.response.as_ref().map(|r| (r.0, r.1.as_str())),
            Some((200, "OK"))
        );
        let b = &out.out_of_dialog[1];
        assert!(b.response.is_none());
        assert_eq!(b.retransmissions, 1);
        assert_eq!(out.stats.resent, 1);
    }

    #[test]
    fn finished_calls_beyond_the_kept_cap_are_counted_not_kept() {
        // A scanner's flood of unanswered INVITEs: memory must stay bounded.
        let mut h = H::with(SipLimits {
            max_calls: 2,
            max_kept_calls: 3,
            ..SipLimits::default()
        });
        for i in 0..10 {
            h.feed(
                A,
                B,
                i * 10,
                &req(
                    "INVITE",
                    &format!("flood{i}"),
                    1,
                    "INVITE",
                    "z9hG4bK1",
                    "fa",
                    None,
                    "",
                    "",
                ),
            );
        }
        // A legitimate call after the flood: it got a response, so it is kept.
        h.feed(
            A,
            B,
            500,
            &req(
                "INVITE", "legit", 1, "INVITE", "z9hG4bK2", "fa", None, "", "",
            ),
        );
        h.feed(
            B,
            A,
            501,
            &resp(
                486,
                "Busy Here",
                "legit",
                1,
                "INVITE",
                "z9hG4bK2",
                "fa",
                Some("tb"),
                "",
                "",
            ),
        );
        let out = h.st.finish();
        // Unanswered calls fill at most half of the kept room (3 / 2 = 1).
        assert_eq!(
            out.calls.len(),
            2,
            "{:?}",
            out.calls.iter().map(|c| &c.call_id).collect::<Vec<_>>()
        );
        assert!(out.calls.iter().any(|c| c.call_id == "legit"));
        assert!(
            out.evicted.contains(&("calls_not_kept", 9)),
            "{:?}",
            out.evicted
        );
        // Every message is still counted like tshark counts it.
        assert_eq!(out.stats.messages, 12);
    }

    #[test]
    fn cap_evicts_least_recent_call() {
        let mut h = H::with(SipLimits {
            max_calls: 2,
            ..SipLimits::default()
        });
        for i in 0..3 {
            h.feed(
                A,
                B,
                i * 10,
                &req(
                    "INVITE",
                    &format!("cap{i}"),
                    1,
                    "INVITE",
                    "z9hG4bK1",
                    "fa",
                    None,
                    "",
                    "",
                ),
            );
        }
        // The first call is finalised: a late 200 for it no longer matches.
        h.feed(
            B,
            A,
            100,
            &resp(
                200,
                "OK",
                "cap0",
                1,
                "INVITE",
                "z9hG4bK1",
                "fa",
                Some("t"),
                "",
                "",
            ),
        );
        let out = h.done();
        assert_eq!(out.evicted, vec![("calls", 1)]);
        assert_eq!(out.calls.len(), 3);
        assert_eq!(out.calls[0].call_id, "cap0");
        assert_eq!(out.calls[0].state, CallState::CallSetup);
    }

    #[test]
    fn idle_calls_expire_on_capture_clock() {
        let mut h = H::with(SipLimits {
            call_idle_timeout_ms: 1000,
            ..SipLimits::default()
        });
        h.feed(
            A,
            B,
            0,
            &req("INVITE", "e1", 1, "INVITE", "z9hG4bK1", "fa", None, "", ""),
        );
        h.feed(
            A,
            B,
            1500,
            &req("INVITE", "e2", 1, "INVITE", "z9hG4bK1", "fa", None, "", ""),
        );
        h.st.expire(Ts(1_700_000_000_000_000_000 + 1800 * 1_000_000));
        assert_eq!(h.st.live_calls(), 1);
        let (calls, _, _) = h.st.drain_finished();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].call_id, "e1");
        let out = h.done();
        assert_eq!(out.calls.len(), 1);
        assert_eq!(out.calls[0].call_id, "e2");
    }

    /// The kept cap bounds what waits in memory: a streaming run drains finished calls
    /// to its spill, and a day's worth of answered calls is then all reported; a run
    /// that never drains keeps the cap. Unanswered calls count over the whole capture.
    #[test]
    fn draining_frees_the_kept_room_for_answered_calls_only() {
        let run = |drain: bool| {
            let mut h = H::with(SipLimits {
                max_calls: 2,
                max_kept_calls: 4,
                ..SipLimits::default()
            });
            let mut drained = 0;
            for i in 0..8i64 {
                let id = format!("c{i}");
                let t = i * 100;
                h.feed(
                    A,
                    B,
                    t,
                    &req("INVITE", &id, 1, "INVITE", "z9hG4bK1", "fa", None, "", ""),
                );
                h.feed(
                    B,
                    A,
                    t + 1,
                    &resp(
                        486,
                        "Busy Here",
                        &id,
                        1,
                        "INVITE",
                        "z9hG4bK1",
                        "fa",
                        Some("tb"),
                        "",
                        "",
                    ),
                );
                // Never answered: at most 4 / 2 = 2 of these are kept, drained or not.
                let scan = format!("scan{i}");
                h.feed(
                    A,
                    B,
                    t + 2,
                    &req("INVITE", &scan, 1, "INVITE", "z9hG4bK2", "fa", None, "", ""),
                );
                if drain {
                    drained += h.st.drain_finished().0.len();
                }
            }
            let out = h.st.finish();
            let not_kept = out
                .evicted
                .iter()
                .find(|(k, _)| *k == "calls_not_kept")
                .map_or(0, |(_, n)| *n);
            (drained + out.calls.len(), not_kept)
        };
        // Draining: all 8 answered calls and 2 of the 8 unanswered ones.
        assert_eq!(run(true), (10, 6));
        // Never drained: 4 calls in all (at most 2 unanswered), the other 12 counted.
        assert_eq!(run(false), (4, 12));
    }

    /// An ended dialog is finalised 64·T1 after its last message (ten minutes when it was
    /// refused with a challenge), one still up is not; a message with its Call-ID after
    /// that starts a new call.
    #[test]
    fn ended_calls_are_finalised_after_the_retransmission_window() {
        let t0 = 1_700_000_000_000_000_000i64;
        let at = |ms: i64| Ts(t0 + ms * 1_000_000);
        let mut h = H::new();
        // (Call-ID, ms, request or response, CSeq method, branch)
        let invite = |h: &mut H, cid: &str, ms: i64, br: &str| {
            h.feed(
                A,
                B,
                ms,
                &req("INVITE", cid, 1, "INVITE", br, "fa", None, "", ""),
            );
        };
        let answer = |h: &mut H, cid: &str, ms: i64, code: u16, br: &str, cm: &str, cseq: u32| {
            let r = resp(code, "X", cid, cseq, cm, br, "fa", Some("tb"), "", "");
            h.feed(B, A, ms, &r);
        };
        let ack = |h: &mut H, cid: &str, ms: i64, br: &str| {
            h.feed(
                A,
                B,
                ms,
                &req("ACK", cid, 1, "ACK", br, "fa", Some("tb"), "", ""),
            );
        };
        // c1: challenged; r1: refused; u1: answered, still up; b1: answered and hung up.
        invite(&mut h, "c1", 0, "z9hG4bKc");
        answer(&mut h, "c1", 10, 407, "z9hG4bKc", "INVITE", 1);
        invite(&mut h, "r1", 0, "z9hG4bKr");
        answer(&mut h, "r1", 10, 486, "z9hG4bKr", "INVITE", 1);
        ack(&mut h, "r1", 20, "z9hG4bKr");
        for cid in ["u1", "b1"] {
            invite(&mut h, cid, 0, "z9hG4bKi");
            answer(&mut h, cid, 10, 200, "z9hG4bKi", "INVITE", 1);
            ack(&mut h, cid, 20, "z9hG4bKa");
        }
        let bye = req("BYE", "b1", 2, "BYE", "z9hG4bKb", "fa", Some("tb"), "", "");
        h.feed(A, B, 5000, &bye);
        answer(&mut h, "b1", 5010, 200, "z9hG4bKb", "BYE", 2);
        // Within the window nothing is finalised: a retransmitted BYE or 200 may still come.
        h.st.expire(at(30_000));
        assert_eq!(h.st.live_calls(), 4);
        h.st.expire(at(33_000));
        let (calls, _, _) = h.st.drain_finished();
        let ids: Vec<(&str, CallState)> = calls
            .iter()
            .map(|c| (c.call_id.as_str(), c.state))
            .collect();
        assert_eq!(ids, [("r1", CallState::Rejected)]);
        h.st.expire(at(37_100));
        let (calls, _, _) = h.st.drain_finished();
        let ids: Vec<(&str, CallState)> = calls
            .iter()
            .map(|c| (c.call_id.as_str(), c.state))
            .collect();
        assert_eq!(ids, [("b1", CallState::Completed)]);
        // The challenged call waits ten minutes for its retry with credentials.
        h.st.expire(at(599_000));
        assert_eq!(h.st.live_calls(), 2);
        h.st.expire(at(601_000));
        let (calls, _, _) = h.st.drain_finished();
        let ids: Vec<(&str, Option<u16>)> = calls
            .iter()
            .map(|c| (c.call_id.as_str(), c.final_code))
            .collect();
        assert_eq!(ids, [("c1", Some(407))]);
        // The Call-ID used again later: a new call.
        invite(&mut h, "b1", 700_000, "z9hG4bKn");
        let out = h.done();
        let ids: Vec<(&str, CallState)> = out
            .calls
            .iter()
            .map(|c| (c.call_id.as_str(), c.state))
            .collect();
        assert_eq!(
            ids,
            [("u1", CallState::InCall), ("b1", CallState::CallSetup)]
        );
    }

    /// A message of the Call-ID without a usable CSeq still counts as activity: the ended
    /// call is finalised 64·T1 after it, not after its last complete message (found by the
    /// `pipeline` fuzz target, as a stale recency key).
    #[test]
    fn activity_without_cseq_delays_the_finalisation() {
        let t0 = 1_700_000_000_000_000_000i64;
        let at = |ms: i64| Ts(t0 + ms * 1_000_000);
        let mut h = H::new();
        h.feed(
            A,
            B,
            0,
            &req("INVITE", "r1", 1, "INVITE", "z9hG4bKr", "fa", None, "", ""),
        );
        let busy = resp(
            486,
            "Busy",
            "r1",
            1,
            "INVITE",
            "z9hG4bKr",
            "fa",
            Some("tb"),
            "",
            "",
        );
        h.feed(B, A, 10, &busy);
        let junk = req("ACK", "r1", 1, "ACK", "z9hG4bKr", "fa", Some("tb"), "", "")
            .replace("CSeq: 1 ACK\n", "");
        h.feed(A, B, 20_000, &junk);
        h.st.expire(at(40_000));
        assert_eq!(h.st.live_calls(), 1);
        h.st.expire(at(52_100));
        assert_eq!(h.st.live_calls(), 0);
        let (calls, _, _) = h.st.drain_finished();
        assert_eq!(calls.len(), 1);
    }

    #[test]
    fn missing_call_id_is_an_anomaly_but_counted() {
        let mut h = H::new();
        let m = req("INVITE", "x", 1, "INVITE", "z9hG4bK1", "fa", None, "", "")
            .replace("Call-ID: x\n", "");
        h.feed(A, B, 0, &m);
        let out = h.done();
        assert!(out.calls.is_empty());
        assert_eq!(out.stats.messages, 1);
        assert_eq!(out.stats.requests.get("INVITE"), Some(&1));
        assert!(out.anomalies.iter().any(|a| a.kind == "sip.missing_header"));
    }

    #[test]
    fn many_distinct_call_ids_stay_bounded() {
        let mut h = H::with(SipLimits {
            max_calls: 500,
            call_idle_timeout_ms: 50,
            ..SipLimits::default()
        });
        let start = std::time::Instant::now();
        for i in 0..20_000i64 {
            h.feed(
                A,
                B,
                i,
                &req(
                    "INVITE",
                    &format!("m{i}"),
                    1,
                    "INVITE",
                    "z9hG4bK1",
                    "fa",
                    None,
                    "",
                    "",
                ),
            );
            if i % 100 == 0 {
                h.st.expire(Ts(1_700_000_000_000_000_000 + i * 1_000_000));
                let _ = h.st.drain_finished();
            }
            assert!(h.st.live_calls() <= 500);
            assert!(start.elapsed().as_secs() < 60, "not linear");
        }
        assert!(h.st.live_calls() <= 150);
        let out = h.done();
        assert!(out.calls.len() <= 500);
        assert!(matches!(
            out.calls.first().map(|c| &c.messages[0].kind),
            Some(MsgKind::Request { .. })
        ));
    }
}
