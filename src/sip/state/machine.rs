//! The dispatcher: per-Call-ID entries (Wireshark resend state, the call, out-of-dialog
//! requests, pending REGISTER transactions), the registration table, the caps with
//! least-recently-active eviction, and idle expiry on the capture clock.
//!
//! Every table is a seeded-hash map plus a recency index (`BTreeMap<touch, key>`), so a
//! message costs O(log n) whatever the number of Call-IDs, and eviction/expiry pop the
//! oldest entries from the front of the index.

use super::call::{CallB, MsgFacts, is_rfc3261_branch};
use super::reg::{RegB, RegKey, register_bindings};
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
}

/// Owns calls, registrations and out-of-dialog transactions for one shard.
pub struct SipState {
    limits: SipLimits,
    stats: StatAcc,
    entries: HashMap<String, Entry, RandomState>,
    /// Recency indexes: entries holding a call, and the others.
    lru_calls: BTreeMap<u64, String>,
    lru_other: BTreeMap<u64, String>,
    regs: HashMap<RegKey, (u64, RegB), RandomState>,
    lru_regs: BTreeMap<u64, RegKey>,
    touch: u64,
    calls_done: Vec<SipCall>,
    ood_done: Vec<OutOfDialog>,
    regs_done: Vec<Registration>,
    anomalies: Vec<Anomaly>,
    evicted_calls: u64,
    evicted_ood: u64,
    evicted_regs: u64,
}

/// The body is SDP: `application/sdp`, or no Content-Type and a body starting `v=0`.
fn sdp_of(m: &SipMessage) -> Option<Arc<crate::sdp::Sdp>> {
    let body = m.body_bytes();
    if body.is_empty() {
        return None;
    }
    let is_sdp = match m.content_type() {
        Some(ct) => ct == "application/sdp",
        None => {
            let t = body.iter().position(|b| !b.is_ascii_whitespace()).and_then(|i| body.get(i..));
            t.is_some_and(|t| t.starts_with(b"v=0"))
        }
    };
    is_sdp.then(|| Arc::new(crate::sdp::parse(body)))
}

impl SipState {
    pub fn new(limits: SipLimits) -> Self {
        SipState {
            limits,
            stats: StatAcc::default(),
            entries: HashMap::with_hasher(RandomState::default()),
            lru_calls: BTreeMap::new(),
            lru_other: BTreeMap::new(),
            regs: HashMap::with_hasher(RandomState::default()),
            lru_regs: BTreeMap::new(),
            touch: 0,
            calls_done: Vec::new(),
            ood_done: Vec::new(),
            regs_done: Vec::new(),
            anomalies: Vec::new(),
            evicted_calls: 0,
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
            cseq: cseq.as_ref().zip(cseq_method.as_deref()).map(|(c, mm)| (c.seq, mm)),
            response_code: code,
        };
        self.touch_entry(&key, p.ts);
        let (resend, setup) = match self.entries.get_mut(&key) {
            Some(e) => {
                let r = resend_check(&mut e.resend, &ws);
                if e.resend.len() > MAX_RESEND_DIRECTIONS {
                    e.resend.remove(0);
                }
                r
            }
            None => (false, 0),
        };
        self.stats.count(req_method.map(|x| x.as_str()), code, resend, setup);

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
                detail: format!("message without a usable {missing}: not tracked in calls or registrations"),
            });
            return;
        };

        let vias = m.vias();
        let top = vias.first();
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
        let facts = MsgFacts { call_id, cseq, from_tag, to_tag, tx_key, branch, sdp: sdp_of(m), resend };

        match (req_method, code) {
            (Some(method), _) => self.on_request(p, &key, &facts, method),
            (None, Some(code)) => self.on_response(p, &key, &facts, code),
            (None, None) => {}
        }
        self.enforce_caps();
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
                let lru = if e.call.is_some() { &mut self.lru_calls } else { &mut self.lru_other };
                if let Some(k) = lru.remove(&e.touch) {
                    lru.insert(t, k);
                }
                e.touch = t;
                e.last_ts = e.last_ts.max(ts);
            }
            None => {
                self.entries.insert(key.to_string(), Entry { touch: t, last_ts: ts, ..Entry::default() });
                self.lru_other.insert(t, key.to_string());
            }
        }
    }

    fn on_request(&mut self, p: &SipPacket<'_>, key: &str, f: &MsgFacts, method: &Method) {
        if *method == Method::Register {
            self.on_register(p, key, f);
            return;
        }
        let Some(e) = self.entries.get_mut(key) else { return };
        if e.call.is_none() && *method == Method::Invite {
            e.call = Some(Box::new(CallB::new(p, f)));
            // Move the entry to the calls index.
            if let Some(k) = self.lru_other.remove(&e.touch) {
                self.lru_calls.insert(e.touch, k);
            }
        }
        if let Some(c) = e.call.as_mut() {
            c.on_request(p, f, method);
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
            frame: p.frame,
            ts: p.ts,
            retransmissions: 0,
            response: None,
            user_agent: m.header_value(HeaderName::UserAgent).map(|v| v.into_owned()),
        });
    }

    fn on_response(&mut self, p: &SipPacket<'_>, key: &str, f: &MsgFacts, code: u16) {
        if f.cseq.method == Method::Register {
            self.on_register_response(p, key, f, code);
            return;
        }
        let Some(e) = self.entries.get_mut(key) else { return };
        if let Some(c) = e.call.as_mut() {
            c.on_response(p, f, code);
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
            if replace {
                o.response = Some((code, m.reason().map(|r| r.into_owned()).unwrap_or_default(), p.frame, p.ts));
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
            let re = rb.on_request(p, &f.call_id, f.cseq.seq, f.branch.as_deref(), requested, unregister);
            all_retrans &= re;
            keys.push(rk);
        }
        if !all_retrans {
            if let Some(e) = self.entries.get_mut(key) {
                if e.reg_tx.len() >= MAX_REG_TX_PER_CALL_ID {
                    e.reg_tx.remove(0);
                }
                e.reg_tx.push(RegTx { cseq: f.cseq.seq, branch: f.branch.clone(), keys });
            }
        }
    }

    fn on_register_response(&mut self, p: &SipPacket<'_>, key: &str, f: &MsgFacts, code: u16) {
        let Some(e) = self.entries.get(key) else { return };
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
    }

    /// Evict the least recently active entries of any table over its cap.
    fn enforce_caps(&mut self) {
        while self.lru_calls.len() > self.limits.max_calls.max(1) {
            let Some((_, k)) = self.lru_calls.pop_first() else { break };
            self.evicted_calls += 1;
            self.finalise_entry(&k);
        }
        while self.lru_other.len() > self.limits.max_out_of_dialog.max(1) {
            let Some((_, k)) = self.lru_other.pop_first() else { break };
            self.evicted_ood += 1;
            self.finalise_entry(&k);
        }
        while self.lru_regs.len() > self.limits.max_registrations.max(1) {
            let Some((_, k)) = self.lru_regs.pop_first() else { break };
            self.evicted_regs += 1;
            if let Some((_, rb)) = self.regs.remove(&k) {
                self.regs_done.push(rb.finalise());
            }
        }
    }

    /// Move an entry's call and out-of-dialog requests to the finished lists (the entry
    /// must already be out of its recency index).
    fn finalise_entry(&mut self, key: &str) {
        let Some(e) = self.entries.remove(key) else { return };
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
            self.calls_done.push(c.finalise());
        }
        self.ood_done.extend(e.ood);
    }

    /// Finalise entries idle since before `now` (capture clock).
    pub fn expire(&mut self, now: Ts) {
        let cutoff = now.plus_ms(self.limits.call_idle_timeout_ms.saturating_neg());
        for calls in [true, false] {
            loop {
                let lru = if calls { &self.lru_calls } else { &self.lru_other };
                let Some((&t, k)) = lru.first_key_value() else { break };
                let idle = self.entries.get(k).is_none_or(|e| e.last_ts < cutoff);
                if !idle {
                    // Capture order: the front is the least recently active entry.
                    break;
                }
                let lru = if calls { &mut self.lru_calls } else { &mut self.lru_other };
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
        (
            std::mem::take(&mut self.calls_done),
            std::mem::take(&mut self.ood_done),
            std::mem::take(&mut self.regs_done),
        )
    }

    /// Number of live (not yet finalised) calls.
    pub fn live_calls(&self) -> usize {
        self.lru_calls.len()
    }

    /// End of input: everything, sorted by first frame.
    pub fn finish(mut self) -> SipOutput {
        let keys: Vec<String> = self.lru_calls.values().chain(self.lru_other.values()).cloned().collect();
        self.lru_calls.clear();
        self.lru_other.clear();
        for k in keys {
            self.finalise_entry(&k);
        }
        for (_, (_, rb)) in self.regs.drain() {
            self.regs_done.push(rb.finalise());
        }
        let mut calls = self.calls_done;
        calls.sort_by_key(|c| c.first_frame);
        let mut regs = self.regs_done;
        regs.sort_by(|a, b| {
            let fa = a.attempts.first().map(|x| x.frame);
            let fb = b.attempts.first().map(|x| x.frame);
            fa.cmp(&fb).then_with(|| a.aor.cmp(&b.aor)).then_with(|| a.contact.cmp(&b.contact))
        });
        let mut ood = self.ood_done;
        ood.sort_by_key(|o| o.frame);
        let mut evicted = Vec::new();
        for (name, n) in [("calls", self.evicted_calls), ("out_of_dialog", self.evicted_ood), ("registrations", self.evicted_regs)] {
            if n > 0 {
                evicted.push((name, n));
            }
        }
        SipOutput {
            calls,
            registrations: regs,
            out_of_dialog: ood,
            stats: self.stats.finish(),
            anomalies: self.anomalies,
            evicted,
        }
    }
}
