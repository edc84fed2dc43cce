//! Registrations: one binding per (address-of-record, contact URI), built from REGISTER
//! transactions and their final responses.

use super::{RegAttempt, RegResponse, RegState, Registration, SipPacket};
use crate::sip::wire::{HeaderName, NameAddr, SipMessage};

/// Attempts kept per binding (the oldest go first: the state reads the newest).
pub(crate) const MAX_REG_ATTEMPTS: usize = 1_000;

pub(crate) type RegKey = (String, String);

fn param_u32(c: &NameAddr, name: &str) -> Option<u32> {
    c.params
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_deref())
        .and_then(|v| v.trim().parse().ok())
}

/// Contacts of a REGISTER with their requested expiry: the Contact `expires` parameter
/// wins over the Expires header (RFC 3261 §10.2.1.1). No Contact = query ("" key).
pub(crate) fn register_bindings(m: &SipMessage) -> Vec<(String, Option<u32>, bool)> {
    let hdr = m.expires();
    let contacts = m.contacts();
    if contacts.is_empty() {
        return vec![(String::new(), hdr, false)];
    }
    contacts
        .iter()
        .take(64)
        .map(|c| {
            let exp = param_u32(c, "expires").or(hdr);
            let star = c.uri.trim() == "*";
            (c.uri.clone(), exp, star || exp == Some(0))
        })
        .collect()
}

pub(crate) struct RegB {
    pub reg: Registration,
    /// Top Via branch of each attempt, parallel to `reg.attempts`: a proxy's forwarded copy
    /// (same Call-ID and CSeq, new branch) is its own transaction, not a retransmission.
    branches: Vec<Option<String>>,
}

fn same_tx(
    a: &RegAttempt,
    b: &Option<String>,
    call_id: &str,
    cseq: u32,
    branch: Option<&str>,
) -> bool {
    a.call_id == call_id
        && a.cseq == cseq
        && match (b.as_deref(), branch) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
}

impl RegB {
    pub fn new(aor: String, contact: String) -> RegB {
        RegB {
            reg: Registration {
                aor,
                contact,
                user_agent: None,
                attempts: Vec::new(),
                state: RegState::NoResponse,
            },
            branches: Vec::new(),
        }
    }

    /// A REGISTER for this binding; true when it was a retransmission of the last attempt.
    pub fn on_request(
        &mut self,
        p: &SipPacket<'_>,
        call_id: &str,
        cseq: u32,
        branch: Option<&str>,
        requested: Option<u32>,
        unregister: bool,
    ) -> bool {
        let m: &SipMessage = p.msg;
        if self.reg.user_agent.is_none() {
            self.reg.user_agent = m
                .header_value(HeaderName::UserAgent)
                .map(|v| v.into_owned());
        }
        // Retransmission: same Call-ID + CSeq (+ branch when both carry one).
        if let Some(a) = self
            .reg
            .attempts
            .iter_mut()
            .zip(self.branches.iter())
            .rev()
            .find(|(a, b)| same_tx(a, b, call_id, cseq, branch))
            .map(|(a, _)| a)
        {
            a.retransmissions = a.retransmissions.saturating_add(1);
            return true;
        }
        if self.reg.attempts.len() >= MAX_REG_ATTEMPTS {
            self.reg.attempts.remove(0);
            self.branches.remove(0);
        }
        self.branches.push(branch.map(str::to_string));
        self.reg.attempts.push(RegAttempt {
            frame: p.frame,
            ts: p.ts,
            src: p.tuple.src,
            dst: p.tuple.dst,
            transport: p.tuple.transport,
            call_id: call_id.to_string(),
            cseq,
            requested_expires: requested,
            credentials: m.credentials(),
            retransmissions: 0,
            response: None,
            unregister,
        });
        false
    }

    /// A final response to the REGISTER with this Call-ID and CSeq.
    pub fn on_response(
        &mut self,
        p: &SipPacket<'_>,
        call_id: &str,
        cseq: u32,
        branch: Option<&str>,
        code: u16,
    ) {
        let m: &SipMessage = p.msg;
        let contact = self.reg.contact.clone();
        let Some(a) = self
            .reg
            .attempts
            .iter_mut()
            .zip(self.branches.iter())
            .rev()
            .find(|(a, b)| same_tx(a, b, call_id, cseq, branch))
            .map(|(a, _)| a)
        else {
            return;
        };
        if a.response.is_some() || code < 200 {
            return;
        }
        let granted = if (200..300).contains(&code) {
            m.contacts()
                .iter()
                .find(|c| !contact.is_empty() && c.uri == contact)
                .and_then(|c| param_u32(c, "expires"))
                .or_else(|| m.expires())
        } else {
            None
        };
        let min_expires = if code == 423 {
            m.header_value(HeaderName::MinExpires)
                .and_then(|v| v.trim().parse().ok())
        } else {
            None
        };
        a.response = Some(RegResponse {
            code,
            reason: m.reason().map(|r| r.into_owned()).unwrap_or_default(),
            frame: p.frame,
            ts: p.ts,
            granted_expires: granted,
            challenge: if code == 401 || code == 407 {
                m.challenge()
            } else {
                None
            },
            min_expires,
        });
    }

    /// State from the newest attempt: a challenge to credentials (not flagged stale) is a
    /// failure (Kamailio answers wrong passwords with a fresh 401), a challenge to a
    /// request without credentials is the normal first step.
    pub fn finalise(mut self) -> Registration {
        self.reg.state = match self.reg.attempts.last() {
            None => RegState::NoResponse,
            Some(a) => match &a.response {
                None => RegState::NoResponse,
                Some(r) if (200..300).contains(&r.code) => {
                    if a.unregister || r.granted_expires == Some(0) {
                        RegState::Unregistered
                    } else {
                        RegState::Registered
                    }
                }
                Some(r) if r.code == 401 || r.code == 407 => {
                    let stale = r.challenge.as_ref().is_some_and(|c| c.stale);
                    if a.credentials.is_some() && !stale {
                        RegState::Failed
                    } else {
                        RegState::Challenged
                    }
                }
                Some(_) => RegState::Failed,
            },
        };
        self.reg
    }
}
