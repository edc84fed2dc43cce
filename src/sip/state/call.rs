//! One INVITE-initiated call being built: client transactions (RFC 3261 §17 matching),
//! dialog facts (tags, answer, ACK, BYE, CANCEL), SDP offer/answer (RFC 3264) and the
//! VoIP-Calls state decided when the call is finalised.

use super::{CallState, Hangup, MsgKind, MsgRecord, SdpExchange, SdpRef, SipCall, Transaction};
use crate::sdp::Sdp;
use crate::sip::wire::{CSeq, HeaderName, Method, SipMessage};
use crate::types::Endpoint;
use std::sync::Arc;

/// Messages kept per call (the state keeps updating past it; evidence stops).
pub(crate) const MAX_CALL_MESSAGES: usize = 10_000;
/// Transactions tracked per call.
pub(crate) const MAX_CALL_TRANSACTIONS: usize = 2_000;
/// Offer/answer exchanges kept per call.
const MAX_CALL_EXCHANGES: usize = 500;
/// Transactions searched (newest first) when matching: keeps matching O(1) per message on
/// crafted calls with thousands of transactions; real dialogs interleave only a few.
const TX_SEARCH_WINDOW: usize = 64;

/// RFC 3261 §8.1.1.7: branches starting with the magic cookie are unique per transaction.
pub(crate) fn is_rfc3261_branch(b: &str) -> bool {
    b.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("z9hG4bK"))
}

/// Facts extracted once per message and shared by the call, registration and OOD logic.
pub(crate) struct MsgFacts {
    pub call_id: String,
    pub cseq: CSeq,
    pub from_tag: Option<String>,
    pub to_tag: Option<String>,
    /// Transaction key: the top Via branch when RFC 3261, else the RFC 2543 tuple
    /// (From tag, CSeq number, top Via sent-by); the Call-ID is implicit (per-call table).
    pub tx_key: String,
    pub branch: Option<String>,
    pub sdp: Option<Arc<Sdp>>,
    /// Wireshark's `sip.resend`.
    pub resend: bool,
}

struct TxMeta {
    key: String,
    /// To tag of each response, parallel to `Transaction::responses`.
    resp_tags: Vec<Option<String>>,
    /// Re-INVITE (or other request) inside a confirmed dialog.
    in_dialog: bool,
    final_reason: Option<String>,
}

struct ExMeta {
    /// CSeq of the request whose transaction carries the answer (or the offer, for late offers).
    cseq: u32,
    method: Method,
    /// Offer in a response (INVITE without SDP): answered by ACK/PRACK.
    late: bool,
}

pub(crate) struct CallB {
    pub call: SipCall,
    caller_tag: Option<String>,
    tx_meta: Vec<TxMeta>,
    ex_meta: Vec<ExMeta>,
    confirmed: bool,
    pub messages_dropped: u64,
}

impl CallB {
    pub fn new(p: &super::SipPacket<'_>, f: &MsgFacts) -> CallB {
        let m = &**p.msg;
        CallB {
            call: SipCall {
                call_id: f.call_id.clone(),
                from: m.from_hdr().unwrap_or_default(),
                to: m.to_hdr().unwrap_or_default(),
                caller: p.tuple.src,
                callee: p.tuple.dst,
                transport: p.tuple.transport,
                state: CallState::CallSetup,
                final_code: None,
                final_reason: None,
                start: p.ts,
                end: p.ts,
                first_frame: p.frame,
                ringing_ts: None,
                answer_ts: None,
                ack_ts: None,
                bye: None,
                cancel: None,
                messages: Vec::new(),
                transactions: Vec::new(),
                sdp: Vec::new(),
                to_tags: Vec::new(),
                user_agent: None,
                server: None,
                reinvites: 0,
            },
            caller_tag: f.from_tag.clone(),
            tx_meta: Vec::new(),
            ex_meta: Vec::new(),
            confirmed: false,
            messages_dropped: 0,
        }
    }

    /// Was this message sent by the caller (the side of the first INVITE)? Requests carry
    /// the sender's tag in From, responses the requester's; endpoints are the fallback.
    fn sent_by_caller(&self, is_request: bool, f: &MsgFacts, src: Endpoint) -> bool {
        match (&self.caller_tag, &f.from_tag) {
            (Some(c), Some(t)) => (c == t) == is_request,
            _ => {
                if is_request {
                    src == self.call.caller
                } else {
                    src != self.call.caller
                }
            }
        }
    }

    fn find_tx(&self, key: &str, method: &Method, seq: u32) -> Option<usize> {
        let n = self.call.transactions.len();
        let lo = n.saturating_sub(TX_SEARCH_WINDOW);
        (lo..n).rev().find(|&i| {
            matches!((self.call.transactions.get(i), self.tx_meta.get(i)),
                (Some(t), Some(m)) if m.key == key && &t.method == method && t.cseq == seq)
        })
    }

    fn record(&mut self, p: &super::SipPacket<'_>, f: &MsgFacts) {
        self.call.end = self.call.end.max(p.ts);
        if self.call.messages.len() >= MAX_CALL_MESSAGES {
            self.messages_dropped += 1;
            return;
        }
        self.call.messages.push(msg_record(p, f));
    }

    fn sdp_ref(
        &self,
        p: &super::SipPacket<'_>,
        f: &MsgFacts,
        sdp: &Arc<Sdp>,
        carried_in: String,
    ) -> SdpRef {
        let is_req = p.msg.is_request();
        SdpRef {
            frame: p.frame,
            ts: p.ts,
            src: p.tuple.src,
            dst: p.tuple.dst,
            from_caller: self.sent_by_caller(is_req, f, p.tuple.src),
            carried_in,
            sdp: Arc::clone(sdp),
        }
    }

    fn push_exchange(&mut self, ex: SdpExchange, meta: ExMeta) {
        if self.call.sdp.len() < MAX_CALL_EXCHANGES {
            self.call.sdp.push(ex);
            self.ex_meta.push(meta);
        }
    }

    pub fn on_request(&mut self, p: &super::SipPacket<'_>, f: &MsgFacts, method: &Method) {
        self.record(p, f);
        let m: &SipMessage = p.msg;
        let from_caller = self.sent_by_caller(true, f, p.tuple.src);
        if from_caller && self.call.user_agent.is_none() {
            self.call.user_agent = m
                .header_value(HeaderName::UserAgent)
                .map(|v| v.into_owned());
        }
        // ACK for a non-2xx final shares the INVITE's branch and belongs to its transaction.
        if *method == Method::Ack
            && let Some(i) = self.find_tx(&f.tx_key, &Method::Invite, f.cseq.seq)
        {
            let non2xx = self
                .call
                .transactions
                .get(i)
                .and_then(|t| t.final_code)
                .is_some_and(|c| c >= 300);
            if non2xx || !is_rfc3261_branch(&f.tx_key) {
                self.after_ack(p, f);
                // RFC 2543 ACK for a 2xx shares the INVITE's key: it may still answer a
                // late offer.
                if !non2xx && !f.resend {
                    self.request_sdp(p, f, method);
                }
                return;
            }
        }
        let tx_method = f.cseq.method.clone();
        let retrans = match self.find_tx(&f.tx_key, &tx_method, f.cseq.seq) {
            Some(i) => {
                if let Some(t) = self.call.transactions.get_mut(i) {
                    t.requests = t.requests.saturating_add(1);
                    t.retransmissions = t.retransmissions.saturating_add(1);
                    t.last_request_ts = p.ts;
                }
                true
            }
            None => {
                if self.call.transactions.len() < MAX_CALL_TRANSACTIONS {
                    let in_dialog = self.confirmed && f.to_tag.is_some();
                    self.call.transactions.push(Transaction {
                        method: tx_method.clone(),
                        cseq: f.cseq.seq,
                        branch: f.branch.clone(),
                        first_frame: p.frame,
                        first_ts: p.ts,
                        last_request_ts: p.ts,
                        requests: 1,
                        retransmissions: 0,
                        responses: Vec::new(),
                        final_code: None,
                        final_ts: None,
                        src: p.tuple.src,
                        dst: p.tuple.dst,
                    });
                    self.tx_meta.push(TxMeta {
                        key: f.tx_key.clone(),
                        resp_tags: Vec::new(),
                        in_dialog,
                        final_reason: None,
                    });
                    if *method == Method::Invite && in_dialog {
                        self.call.reinvites = self.call.reinvites.saturating_add(1);
                    }
                }
                false
            }
        };
        if retrans || f.resend {
            return;
        }
        match method {
            Method::Ack => self.after_ack(p, f),
            Method::Cancel if self.call.cancel.is_none() => {
                self.call.cancel = Some((p.frame, p.ts));
            }
            Method::Bye if self.call.bye.is_none() => {
                self.call.bye = Some(Hangup {
                    frame: p.frame,
                    ts: p.ts,
                    by_caller: from_caller,
                });
            }
            _ => {}
        }
        self.request_sdp(p, f, method);
    }

    /// Offers in requests: INVITE / re-INVITE / UPDATE (and any other request with SDP that
    /// does not answer a pending late offer); ACK or PRACK with SDP answer a late offer
    /// (offer in a 2xx or reliable 18x to an INVITE without SDP).
    fn request_sdp(&mut self, p: &super::SipPacket<'_>, f: &MsgFacts, method: &Method) {
        if let Some(sdp) = &f.sdp {
            let carried = method.as_str().to_string();
            let late = self
                .ex_meta
                .iter()
                .rposition(|e| e.late)
                .filter(|&i| self.call.sdp.get(i).is_some_and(|x| x.answer.is_none()));
            let answers_late = matches!(method, Method::Ack | Method::Prack) && late.is_some();
            if answers_late {
                let r = self.sdp_ref(p, f, sdp, carried);
                if let Some(x) = late.and_then(|i| self.call.sdp.get_mut(i)) {
                    x.answer = Some(r);
                }
            } else if *method != Method::Ack {
                let r = self.sdp_ref(p, f, sdp, carried);
                self.push_exchange(
                    SdpExchange {
                        offer: r,
                        answer: None,
                    },
                    ExMeta {
                        cseq: f.cseq.seq,
                        method: f.cseq.method.clone(),
                        late: false,
                    },
                );
            }
        }
    }

    fn after_ack(&mut self, p: &super::SipPacket<'_>, f: &MsgFacts) {
        // First ACK for a 2xx: the INVITE with this CSeq got a 2xx.
        if self.call.ack_ts.is_none() {
            let acked_2xx = self.call.transactions.iter().any(|t| {
                t.method == Method::Invite
                    && t.cseq == f.cseq.seq
                    && t.final_code.is_some_and(|c| (200..300).contains(&c))
            });
            if acked_2xx {
                self.call.ack_ts = Some(p.ts);
            }
        }
    }

    /// Returns whether this is its transaction's first ringing or success response
    /// (101–299, not a retransmission): the request progressed (`SourceTable::progressed`).
    pub fn on_response(&mut self, p: &super::SipPacket<'_>, f: &MsgFacts, code: u16) -> bool {
        self.record(p, f);
        let m: &SipMessage = p.msg;
        if self.call.server.is_none() {
            self.call.server = m.header_value(HeaderName::Server).map(|v| v.into_owned());
        }
        let Some(i) = self.find_tx(&f.tx_key, &f.cseq.method, f.cseq.seq) else {
            return false;
        };
        let (Some(t), Some(meta)) = (self.call.transactions.get_mut(i), self.tx_meta.get_mut(i))
        else {
            return false;
        };
        let dup = t
            .responses
            .iter()
            .zip(meta.resp_tags.iter())
            .any(|((c, ..), tag)| *c == code && *tag == f.to_tag);
        let progressed = (101..300).contains(&code)
            && !dup
            && !f.resend
            && !t.responses.iter().any(|(c, ..)| (101..300).contains(c));
        t.responses.push((code, p.frame, p.ts, dup || f.resend));
        meta.resp_tags.push(f.to_tag.clone());
        if code >= 200 && t.final_code.is_none() {
            t.final_code = Some(code);
            t.final_ts = Some(p.ts);
            meta.final_reason = m.reason().map(|r| r.into_owned());
        }
        if t.method != Method::Invite {
            // Answers to UPDATE (or other offering requests).
            if (200..300).contains(&code) && !dup && !f.resend {
                self.answer_in_response(p, f, code);
            }
            return progressed;
        }
        let initial = !meta.in_dialog;
        if initial
            && code > 100
            && let Some(tag) = &f.to_tag
            && !self.call.to_tags.contains(tag)
            && self.call.to_tags.len() < 64
        {
            self.call.to_tags.push(tag.clone());
        }
        if initial && (101..200).contains(&code) && self.call.ringing_ts.is_none() {
            self.call.ringing_ts = Some(p.ts);
        }
        if (200..300).contains(&code) {
            self.confirmed = true;
            if initial && self.call.answer_ts.is_none() {
                self.call.answer_ts = Some(p.ts);
            }
        }
        if dup || f.resend || code == 100 || code >= 300 {
            return progressed;
        }
        self.answer_in_response(p, f, code);
        progressed
    }

    /// SDP in a 1xx/2xx: the answer to the request's offer, a new answer version (later 200
    /// after a 183 with a different SDP, or another fork's early dialog), or a late offer.
    fn answer_in_response(&mut self, p: &super::SipPacket<'_>, f: &MsgFacts, code: u16) {
        let Some(sdp) = &f.sdp else { return };
        let carried = code.to_string();
        let idx = self
            .ex_meta
            .iter()
            .rposition(|e| e.cseq == f.cseq.seq && e.method == f.cseq.method);
        match idx {
            Some(i) if self.ex_meta.get(i).is_some_and(|e| !e.late) => {
                let r = self.sdp_ref(p, f, sdp, carried);
                let Some(x) = self.call.sdp.get_mut(i) else {
                    return;
                };
                match &x.answer {
                    None => x.answer = Some(r),
                    Some(a) if *a.sdp == **sdp => {}
                    Some(_) => {
                        // A different answer version: kept as its own exchange so the
                        // correlator sees every media address that was announced.
                        let offer = x.offer.clone();
                        self.push_exchange(
                            SdpExchange {
                                offer,
                                answer: Some(r),
                            },
                            ExMeta {
                                cseq: f.cseq.seq,
                                method: f.cseq.method.clone(),
                                late: false,
                            },
                        );
                    }
                }
            }
            Some(_) => {} // late offer repeated in a later response: already recorded
            None => {
                let r = self.sdp_ref(p, f, sdp, carried);
                self.push_exchange(
                    SdpExchange {
                        offer: r,
                        answer: None,
                    },
                    ExMeta {
                        cseq: f.cseq.seq,
                        method: f.cseq.method.clone(),
                        late: true,
                    },
                );
            }
        }
    }

    /// Decide the VoIP-Calls state and the deciding final response.
    /// Has the dialog ended, and how: a BYE was sent, or no initial INVITE was answered
    /// and the last one got a final refusal (a CANCEL's 487 included), what `finalise`
    /// would call COMPLETED, REJECTED or CANCELLED. `Some(true)` when that refusal was a
    /// digest challenge (401/407): the UA may still answer it with credentials in a new
    /// INVITE of the same call, after a person has typed a password.
    pub fn ended(&self) -> Option<bool> {
        if self.call.bye.is_some() {
            return Some(false);
        }
        let mut answered = false;
        let mut last_final = None;
        for (t, m) in self.call.transactions.iter().zip(self.tx_meta.iter()) {
            if t.method == Method::Invite && !m.in_dialog {
                answered |= t.final_code.is_some_and(|x| (200..300).contains(&x));
                last_final = t.final_code;
            }
        }
        match last_final {
            Some(x) if !answered && x >= 300 => Some(matches!(x, 401 | 407)),
            _ => None,
        }
    }

    pub fn finalise(mut self) -> SipCall {
        let c = &mut self.call;
        let initial: Vec<usize> = c
            .transactions
            .iter()
            .zip(self.tx_meta.iter())
            .enumerate()
            .filter(|(_, (t, m))| t.method == Method::Invite && !m.in_dialog)
            .map(|(i, _)| i)
            .collect();
        let final_of = |i: usize| {
            (
                c.transactions.get(i).and_then(|t| t.final_code),
                self.tx_meta.get(i).and_then(|m| m.final_reason.clone()),
            )
        };
        let answered_tx = initial.iter().copied().find(|&i| {
            c.transactions
                .get(i)
                .and_then(|t| t.final_code)
                .is_some_and(|x| (200..300).contains(&x))
        });
        let last = initial.last().copied();
        let (state, fin) = if let Some(i) = answered_tx {
            let st = if c.bye.is_some() {
                CallState::Completed
            } else {
                CallState::InCall
            };
            (st, final_of(i))
        } else {
            let fin = last.map(final_of).unwrap_or((None, None));
            let st = match fin.0 {
                _ if c.cancel.is_some() => CallState::Cancelled,
                Some(x) if x >= 300 => CallState::Rejected,
                // A BYE with no final seen: the answer was not captured.
                _ if c.bye.is_some() => CallState::Completed,
                _ if c.ringing_ts.is_some() => CallState::Ringing,
                _ if last.is_some() => CallState::CallSetup,
                _ => CallState::Unknown,
            };
            (st, fin)
        };
        c.state = state;
        c.final_code = fin.0;
        c.final_reason = fin.1;
        self.call
    }
}

pub(crate) fn msg_record(p: &super::SipPacket<'_>, f: &MsgFacts) -> MsgRecord {
    let m: &SipMessage = p.msg;
    let kind = match (m.method(), m.status()) {
        (Some(me), _) => MsgKind::Request {
            method: me.clone(),
            uri: m.request_uri().map(|u| u.into_owned()).unwrap_or_default(),
        },
        (None, Some(code)) => MsgKind::Response {
            code,
            reason: m.reason().map(|r| r.into_owned()).unwrap_or_default(),
        },
        (None, None) => MsgKind::Response {
            code: 0,
            reason: String::new(),
        },
    };
    MsgRecord {
        frame: p.frame,
        ts: p.ts,
        src: p.tuple.src,
        dst: p.tuple.dst,
        transport: p.tuple.transport,
        kind,
        cseq: Some(f.cseq.clone()),
        branch: f.branch.clone(),
        retransmission: f.resend,
        size: u32::try_from(p.size).unwrap_or(u32::MAX),
        fragmented: p.fragmented,
        msg: Arc::clone(p.msg),
        sdp: f.sdp.clone(),
    }
}
