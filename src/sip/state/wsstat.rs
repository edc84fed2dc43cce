//! Wireshark's `sip.resend` flag and `-z sip,stat` counters, reproduced exactly.
//!
//! Source: epan/dissectors/packet-sip.c (`sip_is_packet_resend`, `sip_find_invite`) and
//! ui/cli/tap-sipstat.c (`sipstat_packet`). The resend table is keyed by
//! (Call-ID, source address, destination address, source port, destination port), so the
//! two directions of a dialog have separate entries; each entry remembers the last CSeq
//! number, the method first seen with that number, a transaction state and, for requests,
//! the request time. Semantics reproduced here:
//! - only UDP; a message without a parsable CSeq number is never a resend;
//! - a new CSeq number on a key resets the entry (method, state, request time);
//! - a request is a resend when its CSeq number and method equal the entry's, a request was
//!   the last thing seen on the key, and the method is neither ACK nor CANCEL;
//! - a response is a resend when it is final (≥ 200), its CSeq number and method equal the
//!   entry's, a final response was the last thing seen, and its code equals that final code;
//! - every request that is not a resend stores its time as the entry's request time (so a
//!   CANCEL between INVITE and ACK moves it; INVITE retransmissions do not);
//! - the setup time is computed on an ACK (CSeq method ACK) *before* the resend update, as
//!   ACK time − request time of the same-direction entry, in integer ms with Wireshark's
//!   split arithmetic (`secs·1000 + nsecs/10⁶`, truncating); zero setup times are not counted.
//!
//! Known difference: Wireshark truncates the Call-ID to 127 bytes in the key (two Call-IDs
//! sharing their first 127 bytes share an entry); we key by the full Call-ID.

use super::{SetupTimes, SipStats};
use crate::sip::codes;
use crate::types::{Endpoint, Ts};

/// Wireshark copies CSeq methods into a 16-byte buffer (15 characters + NUL).
const MAX_CSEQ_METHOD: usize = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxState {
    Nothing,
    Request,
    Provisional,
    Final,
}

/// One direction of one Call-ID.
#[derive(Debug, Clone)]
pub(crate) struct ResendEntry {
    src: Endpoint,
    dst: Endpoint,
    cseq: u32,
    method: Box<str>,
    state: TxState,
    response_code: u16,
    /// Wireshark zero-initialises this, so an entry created by a response has time 0.
    request_time: Ts,
}

fn trunc_method(m: &str) -> &str {
    if m.len() <= MAX_CSEQ_METHOD {
        return m;
    }
    let mut end = MAX_CSEQ_METHOD;
    while end > 0 && !m.is_char_boundary(end) {
        end -= 1;
    }
    m.get(..end).unwrap_or("")
}

/// Wireshark's `(secs·1000) + (nsecs / 1000000)` in C `gint` arithmetic, stored in a `guint32`.
fn ws_ms_between(now: Ts, then: Ts) -> u32 {
    let ns = Ts::NS_PER_SEC;
    let (s1, n1) = (now.0.div_euclid(ns), now.0.rem_euclid(ns));
    let (s0, n0) = (then.0.div_euclid(ns), then.0.rem_euclid(ns));
    let secs = s1.wrapping_sub(s0) as i32;
    let nsecs = (n1 - n0) as i32; // |n1 - n0| < 10⁹ fits an i32
    secs.wrapping_mul(1000).wrapping_add(nsecs / 1_000_000) as u32
}

/// The message facts the Wireshark logic looks at.
pub(crate) struct WsMsg<'a> {
    pub src: Endpoint,
    pub dst: Endpoint,
    pub udp: bool,
    pub ts: Ts,
    /// CSeq number and method text (None when the CSeq is absent or unparsable).
    pub cseq: Option<(u32, &'a str)>,
    /// None for requests.
    pub response_code: Option<u16>,
}

/// Returns `(resend, setup_time_ms)` and updates the per-direction entries of one Call-ID.
pub(crate) fn resend_check(entries: &mut Vec<ResendEntry>, m: &WsMsg<'_>) -> (bool, u32) {
    let Some((cseq, method_full)) = m.cseq else {
        return (false, 0);
    };
    if !m.udp {
        return (false, 0);
    }
    let method = trunc_method(method_full);
    let is_request = m.response_code.is_none();
    let idx = entries
        .iter()
        .position(|e| e.src == m.src && e.dst == m.dst);

    // sip_find_invite: runs before the resend update, same direction.
    let mut setup = 0;
    if is_request
        && method == "ACK"
        && let Some(e) = idx.and_then(|i| entries.get(i))
    {
        setup = ws_ms_between(m.ts, e.request_time);
    }

    let (e, cseq_to_compare) = match idx.and_then(|i| entries.get_mut(i)) {
        Some(e) => {
            let cmp = e.cseq;
            if cseq != e.cseq {
                e.cseq = cseq;
                e.method = method.into();
                e.state = TxState::Nothing;
                if is_request {
                    e.request_time = m.ts;
                }
            }
            // The borrow checker wants the index again for the mutable reference.
            (idx, cmp)
        }
        None => {
            entries.push(ResendEntry {
                src: m.src,
                dst: m.dst,
                cseq,
                method: method.into(),
                state: TxState::Nothing,
                response_code: 0,
                request_time: if is_request { m.ts } else { Ts(0) },
            });
            (Some(entries.len() - 1), 0)
        }
    };
    let Some(e) = e.and_then(|i| entries.get_mut(i)) else {
        return (false, setup);
    };
    let mut resend = false;
    match m.response_code {
        None => {
            if cseq == cseq_to_compare
                && e.state == TxState::Request
                && &*e.method == method
                && method != "ACK"
                && method != "CANCEL"
            {
                resend = true;
            }
            e.state = TxState::Request;
            if !resend {
                // The original of a request (any method, ACK and CANCEL included) restarts
                // the clock the next ACK's setup time is measured from.
                e.request_time = m.ts;
            }
        }
        Some(code) => {
            if cseq == cseq_to_compare
                && e.state == TxState::Final
                && &*e.method == method
                && code >= 200
                && code == e.response_code
            {
                resend = true;
            }
            if code >= 200 {
                e.response_code = code;
                e.state = TxState::Final;
            } else {
                e.state = TxState::Provisional;
            }
        }
    }
    e.cseq = cseq;
    (resend, setup)
}

/// The `sip,stat` bucket a status code is counted in: the code itself when Wireshark's
/// `sip_response_code_vals` knows it, else its class's x99; `None` below 100 and from 700
/// up. One table for both this and the phrases tshark prints ([`codes::sipstat_phrase`]).
pub fn ws_code_bucket(code: u16) -> Option<u16> {
    codes::sipstat_phrase(code).map(|(bucket, _)| bucket)
}

/// `sipstat_packet` accumulation.
#[derive(Debug, Default)]
pub(crate) struct StatAcc {
    pub stats: SipStats,
    setup_total: u64,
    setup_count: u64,
    setup_min: u32,
    setup_max: u32,
}

impl StatAcc {
    pub fn count(
        &mut self,
        request_method: Option<&str>,
        code: Option<u16>,
        resend: bool,
        setup: u32,
    ) {
        let s = &mut self.stats;
        s.messages += 1;
        if setup != 0 {
            self.setup_count += 1;
            self.setup_total += u64::from(setup);
            if self.setup_count == 1 {
                self.setup_min = setup;
                self.setup_max = setup;
            } else {
                self.setup_min = self.setup_min.min(setup);
                self.setup_max = self.setup_max.max(setup);
            }
        }
        if resend {
            s.resent += 1;
        }
        match (code, request_method) {
            (Some(c), _) if c != 0 => {
                if let Some(b) = ws_code_bucket(c) {
                    *s.responses.entry(b).or_insert(0) += 1;
                }
            }
            (_, Some(m)) => *s.requests.entry(m.to_string()).or_insert(0) += 1,
            _ => {}
        }
    }

    pub fn finish(mut self) -> SipStats {
        if self.setup_count > 0 {
            // tshark prints the integer average (guint32 division).
            self.stats.setup_time_ms = Some(SetupTimes {
                count: self.setup_count,
                avg: (self.setup_total / self.setup_count) as f64,
                min: f64::from(self.setup_min),
                max: f64::from(self.setup_max),
            });
        }
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(p: u16) -> Endpoint {
        Endpoint::new("10.0.0.1".parse().unwrap(), p)
    }

    fn msg(
        src: u16,
        dst: u16,
        ts_ms: i64,
        cseq: u32,
        m: &'static str,
        code: Option<u16>,
    ) -> WsMsg<'static> {
        WsMsg {
            src: ep(src),
            dst: ep(dst),
            udp: true,
            ts: Ts(ts_ms * 1_000_000),
            cseq: Some((cseq, m)),
            response_code: code,
        }
    }

    #[test]
    fn invite_retransmission_and_final_resend() {
        let mut t = Vec::new();
        assert_eq!(
            resend_check(&mut t, &msg(1, 2, 0, 1, "INVITE", None)),
            (false, 0)
        );
        assert_eq!(
            resend_check(&mut t, &msg(1, 2, 500, 1, "INVITE", None)),
            (true, 0)
        );
        assert!(!resend_check(&mut t, &msg(2, 1, 600, 1, "INVITE", Some(100))).0);
        assert!(!resend_check(&mut t, &msg(2, 1, 700, 1, "INVITE", Some(200))).0);
        assert!(resend_check(&mut t, &msg(2, 1, 800, 1, "INVITE", Some(200))).0);
        // ACK: setup = ACK − first INVITE (the retransmission did not reset the time).
        assert_eq!(
            resend_check(&mut t, &msg(1, 2, 2050, 1, "ACK", None)),
            (false, 2050)
        );
        // CANCEL copies are never resends.
        assert!(!resend_check(&mut t, &msg(1, 2, 2100, 1, "CANCEL", None)).0);
        assert!(!resend_check(&mut t, &msg(1, 2, 2200, 1, "CANCEL", None)).0);
        // The other direction is its own key.
        assert!(!resend_check(&mut t, &msg(2, 1, 3000, 1, "BYE", None)).0);
    }

    #[test]
    fn not_udp_or_no_cseq_never_resend() {
        let mut t = Vec::new();
        let mut m = msg(1, 2, 0, 1, "OPTIONS", None);
        m.udp = false;
        resend_check(&mut t, &m);
        assert!(!resend_check(&mut t, &m).0);
        let mut m = msg(1, 2, 0, 1, "OPTIONS", None);
        m.cseq = None;
        assert!(!resend_check(&mut t, &m).0);
        assert!(!resend_check(&mut t, &m).0);
    }

    #[test]
    fn wireshark_ms_arithmetic_truncates_per_part() {
        // 1.9999 s across a second boundary: 2 s and −0.0001 s → 2000 + 0.
        assert_eq!(
            ws_ms_between(
                Ts(3_000_000_000 - 100_000 + 2_000_000_000),
                Ts(3_000_000_000)
            ),
            1999
        );
        assert_eq!(ws_ms_between(Ts(5_000_000_000), Ts(3_000_100_000)), 2000);
    }

    #[test]
    fn code_buckets() {
        assert_eq!(ws_code_bucket(486), Some(486));
        assert_eq!(ws_code_bucket(419), Some(499));
        assert_eq!(ws_code_bucket(201), Some(299));
        assert_eq!(ws_code_bucket(99), None);
        assert_eq!(ws_code_bucket(700), None);
    }
}
